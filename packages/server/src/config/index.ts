export { loadConfig, configFrom, ConfigError, type Config } from './load.js';
export { SETTINGS, type SettingName, type SettingSpec } from './schema.js';
