export * from './codes.js';
export * from './errors.js';
export * from './events.js';
export * from './scopes.js';
