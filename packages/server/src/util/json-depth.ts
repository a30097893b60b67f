/**
 * JSON nesting-depth limits, checked without recursion.
 *
 * `JSON.parse` itself copes with 100,000 levels, but everything recursive after it does not:
 * `JSON.stringify` in the event log, zod, socket.io's parser, a structured clone. A document that
 * deep made the event log's append overflow the stack, which came back as a retryable 503. So the
 * depth is bounded where JSON enters (HTTP bodies, socket frames), and these checks are loops over
 * an explicit stack, safe at any depth.
 *
 * Depth counts containers: `1` and `"s"` are 0, `{}` and `[]` are 1, `{"a":[1]}` is 2.
 */

/** Default for `MAX_JSON_DEPTH`: far beyond real payloads, far below any stack limit. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/**
 * Whether a JSON text nests deeper than `maxDepth`, from its characters alone (before parsing it):
 * one pass, stopping at the first bracket past the limit. Brackets inside strings do not count.
 * The text is not validated; `JSON.parse` does that afterwards.
 *
 * @example
 *   jsonTextExceedsDepth('{"a":[1]}', 1); // true
 *   jsonTextExceedsDepth('{"a":"[[["}', 1); // false
 */
export function jsonTextExceedsDepth(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/**
 * Whether a value (an already parsed frame, an app's publish data) nests deeper than `maxDepth`.
 * Only arrays and objects are entered, through their own enumerable values, as JSON.stringify
 * would. Depth-first over an explicit stack, so a too-deep value is found after at most
 * `maxDepth + 1` steps down, and a cyclic one counts as too deep rather than looping.
 *
 * @example
 *   exceedsJsonDepth({ a: [1] }, 1); // true
 */
export function exceedsJsonDepth(value: unknown, maxDepth: number): boolean {
  if (!isContainer(value)) return false;
  // The deepest level each container was entered at: a shared one (possible outside JSON) is
  // entered again only when reached deeper, so the walk stays bounded by size × maxDepth.
  const enteredAt = new Map<object, number>();
  const stack: Array<{ value: object; depth: number }> = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const { value: container, depth } = stack.pop()!;
    if (depth > maxDepth) return true;
    const seen = enteredAt.get(container);
    if (seen !== undefined && seen >= depth) continue;
    enteredAt.set(container, depth);
    const children: unknown[] = Array.isArray(container) ? container : Object.values(container);
    for (const child of children) if (isContainer(child)) stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}

function isContainer(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
