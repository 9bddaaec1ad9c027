import { createHash } from 'node:crypto';
import type { Notification, Receiver } from './notifiers.js';
import type { OutboxEntry } from './outbox.js';

/**
 * Grouping: due notifications of one receiver whose alerts share the `by` labels are delivered
 * together, as one digest. The first batch of a group waits `waitMs` after its oldest notification
 * (so alerts that fire together arrive together); later ones at most every `intervalMs`.
 */
export interface GroupOptions {
  by: string[];
  waitMs: number;
  intervalMs: number;
}

/** Receivers that take digests. PagerDuty and Alertmanager group and deduplicate per alert themselves. */
export function groupable(receiver: Receiver): boolean {
  return receiver.type === 'webhook' || receiver.type === 'slack' || receiver.type === 'email';
}

/** The group a notification belongs to, for one receiver. */
export function groupKey(receiver: string, n: Notification, by: string[]): string {
  return `${receiver}|${by.map((label) => `${label}=${n.labels[label] ?? ''}`).join(',')}`;
}

/** When a group may be delivered: after the wait for a first batch, after the interval for later ones. */
export function groupDue(
  entries: OutboxEntry[],
  lastSentAt: number | undefined,
  opts: GroupOptions,
  now: number,
): boolean {
  if (lastSentAt !== undefined) return now - lastSentAt >= opts.intervalMs;
  const oldest = Math.min(...entries.map((e) => e.createdAt));
  return now - oldest >= opts.waitMs;
}

/**
 * One notification standing for several: firing if any member fires, the labels they share, a
 * summary naming them, one line per member in `details`, and a key derived from the members' keys
 * (so a retried digest keeps its idempotency key).
 */
export function digest(members: Notification[], by: string[]): Notification {
  const first = members[0];
  if (first === undefined) throw new Error('an empty group');
  if (members.length === 1) return first;
  const firing = members.filter((n) => n.status === 'firing');
  const shared = Object.fromEntries(
    Object.entries(first.labels).filter(([name, value]) => members.every((n) => n.labels[name] === value)),
  );
  const severity = members.some((n) => n.severity === 'critical')
    ? 'critical'
    : members.some((n) => n.severity === 'warning')
      ? 'warning'
      : 'info';
  const names = members.map((n) => `${n.rule} (${n.status})`);
  return {
    key: `group:${createHash('sha256')
      .update(members.map((n) => n.key).join('\n'))
      .digest('hex')
      .slice(0, 24)}`,
    rule: `group:${by.map((label) => `${label}=${first.labels[label] ?? ''}`).join(',')}`,
    status: firing.length > 0 ? 'firing' : 'resolved',
    severity,
    summary: `${members.length} alerts (${firing.length} firing): ${names.join(', ')}`,
    labels: { ...shared, alertname: 'group', severity },
    startsAt: Math.min(...members.map((n) => n.startsAt)),
    ...(firing.length === 0 ? { endsAt: Math.max(...members.map((n) => n.endsAt ?? n.startsAt)) } : {}),
    service: first.service,
    ...(first.instance === undefined ? {} : { instance: first.instance }),
    details: members
      .map(
        (n) =>
          `${n.status.toUpperCase()} [${n.severity}] ${n.rule}: ${n.summary}${n.value === undefined ? '' : ` (value ${n.value})`}`,
      )
      .join('\n'),
  };
}
