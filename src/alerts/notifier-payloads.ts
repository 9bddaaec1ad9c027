import { createHash } from 'node:crypto';
import type {
  AlertmanagerReceiver,
  HttpReceiver,
  Notification,
  PagerDutyReceiver,
  SlackReceiver,
} from './notifier-types.js';

/** Alertmanager's `endsAt` of an alert that has not resolved (Go's zero time). */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Slack's brand colours: red, yellow, blue by severity while firing; green once resolved. */
const SLACK_COLOURS = {
  critical: '#E01E5A',
  warning: '#ECB22E',
  info: '#36C5F0',
  resolved: '#2EB67D',
} as const;
const SLACK_EMOJI = { critical: ':red_circle:', warning: ':warning:', info: ':information_source:' } as const;

/** PagerDuty limits `dedup_key` to 255 characters and `payload.summary` to 1024. */
const PD_DEDUP_MAX = 255;
const PD_SUMMARY_MAX = 1024;

/** `[FIRING critical] <summary>` or `[RESOLVED] <summary>`: email subjects and chat titles. */
export function notificationTitle(n: Notification): string {
  return n.status === 'firing' ? `[FIRING ${n.severity}] ${n.summary}` : `[RESOLVED] ${n.summary}`;
}

/** RFC 3339 in UTC with milliseconds, e.g. `2025-01-02T03:04:05.678Z`. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

/** A value as a person reads it: integers as they are, others to 6 significant digits. */
export function formatValue(value: number): string {
  return Number.isFinite(value) && !Number.isInteger(value)
    ? String(Number(value.toPrecision(6)))
    : String(value);
}

/** The notification's fields as label/text pairs, in reading order (email and Slack bodies). */
export function notificationFacts(n: Notification): Array<[string, string]> {
  const facts: Array<[string, string]> = [
    ['Status', n.status],
    ['Severity', n.severity],
    ['Rule', n.rule],
    ['Service', n.service],
  ];
  if (n.instance !== undefined) facts.push(['Instance', n.instance]);
  if (n.value !== undefined) facts.push(['Value', formatValue(n.value)]);
  facts.push(['Started', rfc3339(n.startsAt)]);
  if (n.endsAt !== undefined) facts.push(['Ended', rfc3339(n.endsAt)]);
  return facts;
}

/** `k="v"` pairs sorted by name, joined by `, ` (empty string without labels). */
export function formatLabels(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(', ');
}

/**
 * The PagerDuty `dedup_key` of an alert: service, rule and the rule's labels, the same for its
 * trigger and its resolve whatever the transition. Hashed past PagerDuty's 255 characters.
 */
export function pagerDutyDedupKey(n: Notification): string {
  const labels = formatLabels(n.labels);
  const full = `bulwark/${n.service}/${n.rule}${labels === '' ? '' : `{${labels}}`}`;
  if (full.length <= PD_DEDUP_MAX) return full;
  const hash = createHash('sha256').update(full).digest('hex');
  return `${full.slice(0, PD_DEDUP_MAX - hash.length - 1)}#${hash}`;
}

/**
 * The Prometheus fingerprint of a label set (FNV-1a 64 over sorted `name 0xff value 0xff`, 16 hex
 * digits), as Alertmanager computes it, so receivers that key on it agree with Alertmanager.
 */
export function labelsFingerprint(labels: Record<string, string>): string {
  const prime = 1099511628211n;
  const mask = 0xffffffffffffffffn;
  let hash = 14695981039346656037n;
  const add = (byte: number): void => {
    hash = ((hash ^ BigInt(byte)) * prime) & mask;
  };
  for (const name of Object.keys(labels).sort()) {
    for (const byte of Buffer.from(name)) add(byte);
    add(0xff);
    for (const byte of Buffer.from(labels[name] ?? '')) add(byte);
    add(0xff);
  }
  return hash.toString(16).padStart(16, '0');
}

function alertLabels(n: Notification): Record<string, string> {
  return {
    ...n.labels,
    alertname: n.rule,
    severity: n.severity,
    service: n.service,
    ...(n.instance === undefined ? {} : { instance: n.instance }),
  };
}

function alertmanagerPayload(receiver: AlertmanagerReceiver, n: Notification): unknown {
  const labels = alertLabels(n);
  const annotations: Record<string, string> = { summary: n.summary };
  if (n.value !== undefined) annotations.value = formatValue(n.value);
  if (n.details !== undefined) annotations.description = n.details;
  // A resolved alert without endsAt would read as still firing; its start is the closest fact known.
  const endsAt = n.status === 'firing' ? ZERO_TIME : rfc3339(n.endsAt ?? n.startsAt);
  return {
    version: '4',
    groupKey: `{}:{alertname=${JSON.stringify(n.rule)}}`,
    truncatedAlerts: 0,
    status: n.status,
    receiver: receiver.name,
    groupLabels: { alertname: n.rule },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: n.url ?? '',
    alerts: [
      {
        status: n.status,
        labels,
        annotations,
        startsAt: rfc3339(n.startsAt),
        endsAt,
        generatorURL: n.url ?? '',
        fingerprint: labelsFingerprint(labels),
      },
    ],
  };
}

function pagerDutyPayload(receiver: PagerDutyReceiver, n: Notification): unknown {
  const base = {
    routing_key: receiver.routingKey,
    event_action: n.status === 'firing' ? 'trigger' : 'resolve',
    dedup_key: pagerDutyDedupKey(n),
  };
  // PagerDuty reads only the dedup_key of a resolve event.
  if (n.status === 'resolved') return base;
  const summary = `${n.summary} (${n.service})`;
  return {
    ...base,
    payload: {
      summary: summary.length > PD_SUMMARY_MAX ? `${summary.slice(0, PD_SUMMARY_MAX - 1)}…` : summary,
      severity: n.severity,
      source: n.instance ?? n.service,
      timestamp: rfc3339(n.startsAt),
      component: n.service,
      class: n.rule,
      custom_details: {
        rule: n.rule,
        service: n.service,
        ...(n.instance === undefined ? {} : { instance: n.instance }),
        ...(n.value === undefined ? {} : { value: n.value }),
        labels: n.labels,
        ...(n.details === undefined ? {} : { details: n.details }),
      },
    },
    client: 'Bulwark',
    ...(n.url === undefined ? {} : { client_url: n.url, links: [{ href: n.url, text: 'Alert in Bulwark' }] }),
  };
}

/** Slack's three characters to escape in message text. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function slackPayload(_receiver: SlackReceiver, n: Notification): unknown {
  const firing = n.status === 'firing';
  const title = notificationTitle(n);
  const emoji = firing ? SLACK_EMOJI[n.severity] : ':white_check_mark:';
  const fields = notificationFacts(n)
    .filter(([label]) => label !== 'Status')
    .map(([label, value]) => ({ title: label, value: slackEscape(value), short: true }));
  const labels = formatLabels(n.labels);
  if (labels !== '') fields.push({ title: 'Labels', value: slackEscape(labels), short: false });
  return {
    text: `${emoji} ${slackEscape(title)} (${slackEscape(n.service)})`,
    attachments: [
      {
        color: firing ? SLACK_COLOURS[n.severity] : SLACK_COLOURS.resolved,
        fallback: title,
        title,
        ...(n.url === undefined ? {} : { title_link: n.url }),
        ...(n.details === undefined ? {} : { text: slackEscape(n.details) }),
        fields,
        footer: 'Bulwark alerts',
        ts: Math.floor((n.endsAt ?? n.startsAt) / 1000),
      },
    ],
  };
}

/**
 * The JSON body sent to an HTTP receiver for `n` (pure: same input, same body).
 * - `webhook`: the notification plus `version: 1`.
 * - `slack`: `text` and one colour-coded attachment (severity while firing, green once resolved).
 * - `pagerduty`: Events API v2 `trigger`/`resolve` sharing {@link pagerDutyDedupKey}.
 * - `alertmanager`: the Alertmanager webhook format, version "4", with one alert.
 */
export function receiverPayload(receiver: HttpReceiver, n: Notification): unknown {
  switch (receiver.type) {
    case 'webhook':
      return { version: 1, ...n };
    case 'slack':
      return slackPayload(receiver, n);
    case 'pagerduty':
      return pagerDutyPayload(receiver, n);
    case 'alertmanager':
      return alertmanagerPayload(receiver, n);
  }
}
