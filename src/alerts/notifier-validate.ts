import { isPlainObject } from '../config/paths.js';
import type { FieldProblem } from '../errors/index.js';

/** The fields each receiver type accepts, besides `name` and `type`. */
const FIELDS = {
  webhook: ['url', 'headers'],
  slack: ['url'],
  pagerduty: ['routingKey', 'url'],
  alertmanager: ['url'],
  email: ['smtp', 'from', 'to'],
} as const;

type ReceiverType = keyof typeof FIELDS;

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Something `@` something, no spaces: enough to catch a typo without parsing RFC 5322. */
const ADDRESS = /^(?:[^<>]*<)?[^\s@<>]+@[^\s@<>]+>?$/;

function isReceiverType(value: unknown): value is ReceiverType {
  return typeof value === 'string' && Object.hasOwn(FIELDS, value);
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/** Never quotes the URL in the message: its path or query may be a token. */
function checkUrl(value: unknown, field: string, add: (field: string, message: string) => void): void {
  if (typeof value !== 'string') return add(field, 'must be an http(s) URL');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return add(field, 'must be an http(s) URL (it does not parse)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') add(field, 'must be an http: or https: URL');
}

function checkHeaders(value: unknown, field: string, add: (field: string, message: string) => void): void {
  if (!isPlainObject(value)) return add(field, 'must be an object of header name to string value');
  for (const [name, headerValue] of Object.entries(value)) {
    const at = `${field}.${name}`;
    if (!HEADER_NAME.test(name)) add(at, 'is not a valid HTTP header name');
    else if (typeof headerValue !== 'string') add(at, 'must be a string');
    else if (/[\r\n\0]/.test(headerValue)) add(at, 'must not contain line breaks or NUL');
  }
}

function checkSmtp(value: unknown, field: string, add: (field: string, message: string) => void): void {
  if (!isPlainObject(value)) return add(field, 'must be an object { host, port, secure?, auth? }');
  if (!nonEmptyString(value.host)) add(`${field}.host`, 'must be a non-empty string');
  const port = value.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    add(`${field}.port`, 'must be an integer from 1 to 65535');
  }
  if (value.secure !== undefined && typeof value.secure !== 'boolean')
    add(`${field}.secure`, 'must be a boolean');
  if (value.auth !== undefined) {
    if (!isPlainObject(value.auth)) add(`${field}.auth`, 'must be an object { user, pass }');
    else {
      if (!nonEmptyString(value.auth.user)) add(`${field}.auth.user`, 'must be a non-empty string');
      if (typeof value.auth.pass !== 'string') add(`${field}.auth.pass`, 'must be a string');
    }
  }
  for (const key of Object.keys(value)) {
    if (!['host', 'port', 'secure', 'auth'].includes(key))
      add(`${field}.${key}`, 'is not a known SMTP option');
  }
}

function checkAddresses(value: unknown, field: string, add: (field: string, message: string) => void): void {
  if (!Array.isArray(value) || value.length === 0)
    return add(field, 'must be a non-empty array of email addresses');
  value.forEach((address: unknown, i) => {
    if (typeof address !== 'string' || !ADDRESS.test(address.trim())) {
      add(`${field}[${i}]`, 'must be an email address');
    }
  });
}

/**
 * Checks one receiver of the configuration and names each bad field under `field` (e.g.
 * `receivers[2].url`, `receivers[0].smtp.port`); an empty list means it is usable by `deliver`.
 * Unknown fields are reported (a misspelt `routing_key` would otherwise be ignored). Messages never
 * quote a value, since URLs, routing keys, headers and passwords may be secrets. Unique names across
 * the receivers are the caller's check.
 */
export function validateReceiver(value: unknown, field: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const add = (at: string, message: string): void => {
    problems.push({ field: at, message });
  };
  if (!isPlainObject(value)) {
    add(field, 'must be an object with a name and a type');
    return problems;
  }
  if (!nonEmptyString(value.name)) add(`${field}.name`, 'must be a non-empty string');
  const type = value.type;
  if (!isReceiverType(type)) {
    add(`${field}.type`, `must be one of ${Object.keys(FIELDS).join(', ')}`);
    return problems;
  }
  const at = (key: string): string => `${field}.${key}`;
  switch (type) {
    case 'webhook':
      checkUrl(value.url, at('url'), add);
      if (value.headers !== undefined) checkHeaders(value.headers, at('headers'), add);
      break;
    case 'slack':
    case 'alertmanager':
      checkUrl(value.url, at('url'), add);
      break;
    case 'pagerduty':
      if (!nonEmptyString(value.routingKey)) add(at('routingKey'), 'must be a non-empty string');
      if (value.url !== undefined) checkUrl(value.url, at('url'), add);
      break;
    case 'email':
      checkSmtp(value.smtp, at('smtp'), add);
      if (typeof value.from !== 'string' || !ADDRESS.test(value.from.trim())) {
        add(at('from'), 'must be an email address');
      }
      checkAddresses(value.to, at('to'), add);
      break;
  }
  const known: readonly string[] = ['name', 'type', ...FIELDS[type]];
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) add(at(key), `is not a field of a ${type} receiver`);
  }
  return problems;
}
