// Fields some frameworks read as the method instead of the request line's: a GET carrying one
// may do what another method does, so its answer is not the GET's to store or to serve.
import type { HeaderField } from '../http/message.ts';

const methodOverrideFields = new Set([
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-original-method',
  'x-forwarded-method',
]);

export function hasMethodOverride(headers: readonly HeaderField[]): boolean {
  return headers.some((field) => methodOverrideFields.has(field.lower));
}
