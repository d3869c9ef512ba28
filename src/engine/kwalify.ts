/**
 * A validator for the Kwalify schema fragments barclamps attach to attribs (`type: map`,
 * `mapping`, `seq`/`sequence`, `str`, `int`, `float`/`number`, `bool`, `any`, `required`,
 * `enum`, `pattern`, `range`, `length`). Returns every problem with its path, never throws.
 */
import { isObject, type Json } from '../domain/json.js';

type Schema = Record<string, any>;

export function validateKwalify(schema: Json, value: unknown, path = ''): string[] {
  if (!isObject(schema)) return [];
  const s = schema as Schema;
  const where = path || '/';
  if (value === null || value === undefined) return s.required ? [`${where}: a value is required`] : [];
  const type = String(s.type ?? 'str');
  const errors: string[] = [];
  switch (type) {
    case 'map': {
      if (!isObject(value)) return [`${where}: expected a map, got ${describe(value)}`];
      const mapping: Schema = s.mapping ?? {};
      for (const [k, sub] of Object.entries(mapping)) {
        if (k === '=') continue;
        errors.push(...validateKwalify(sub, (value as Record<string, unknown>)[k], `${path}/${k}`));
      }
      const any = mapping['='];
      for (const [k, v] of Object.entries(value)) {
        if (k in mapping) continue;
        if (any) errors.push(...validateKwalify(any, v, `${path}/${k}`));
        else if (Object.keys(mapping).length) errors.push(`${path}/${k}: key '${k}' is not allowed here`);
      }
      return errors;
    }
    case 'seq': {
      if (!Array.isArray(value)) return [`${where}: expected a list, got ${describe(value)}`];
      const item = Array.isArray(s.sequence) ? s.sequence[0] : s.sequence;
      value.forEach((v, i) => errors.push(...validateKwalify(item ?? {}, v, `${path}/${i}`)));
      return errors;
    }
    case 'str':
    case 'text':
      if (typeof value !== 'string' && !(type === 'text' && typeof value === 'number')) return [`${where}: expected a string, got ${describe(value)}`];
      break;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) return [`${where}: expected an integer, got ${describe(value)}`];
      break;
    case 'float':
    case 'number':
      if (typeof value !== 'number') return [`${where}: expected a number, got ${describe(value)}`];
      break;
    case 'bool':
      if (typeof value !== 'boolean') return [`${where}: expected true or false, got ${describe(value)}`];
      break;
    case 'scalar':
      if (typeof value === 'object') return [`${where}: expected a scalar, got ${describe(value)}`];
      break;
    case 'any':
      break;
    default:
      return [`${where}: the schema uses unknown type '${type}'`];
  }
  if (Array.isArray(s.enum) && !s.enum.some((e: unknown) => e === value)) errors.push(`${where}: ${JSON.stringify(value)} is not one of ${s.enum.map((e: unknown) => JSON.stringify(e)).join(', ')}`);
  if (typeof s.pattern === 'string' && typeof value === 'string') {
    const m = /^\/(.*)\/([a-z]*)$/.exec(s.pattern);
    const re = m ? new RegExp(m[1]!, m[2]!.replace(/[^imsu]/g, '')) : new RegExp(s.pattern);
    if (!re.test(value)) errors.push(`${where}: '${value}' does not match ${s.pattern}`);
  }
  if (isObject(s.range) && typeof value === 'number') {
    const r = s.range as Record<string, number>;
    if (r.min !== undefined && value < r.min) errors.push(`${where}: ${value} is below the minimum ${r.min}`);
    if (r.max !== undefined && value > r.max) errors.push(`${where}: ${value} is above the maximum ${r.max}`);
  }
  if (isObject(s.length) && typeof value === 'string') {
    const r = s.length as Record<string, number>;
    if (r.min !== undefined && value.length < r.min) errors.push(`${where}: shorter than ${r.min} characters`);
    if (r.max !== undefined && value.length > r.max) errors.push(`${where}: longer than ${r.max} characters`);
  }
  return errors;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}
