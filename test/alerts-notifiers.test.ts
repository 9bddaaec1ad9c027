import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import {
  closeNotifiers,
  deliver,
  labelsFingerprint,
  receiverPayload,
  validateReceiver,
  type DeliveryError,
  type Notification,
  type Receiver,
} from '../src/alerts/notifiers.js';
import { freePort } from './helpers/process.js';

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
const T1 = T0 + 90_000;
const LINK = 'https://admin.example.com/alerts/api.latency';
const PD_KEY = 'R0UTINGKEY0123456789abcdef012345';
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

function notification(over: Partial<Notification> = {}): Notification {
  return {
    key: 'api.latency:1:ops',
    rule: 'api.latency',
    status: 'firing',
    severity: 'critical',
    summary: 'p99 latency above 500 ms',
    labels: { team: 'core', route: '/orders' },
    value: 0.73125,
    startsAt: T0,
    service: 'orders-api',
    instance: 'orders-1',
    url: LINK,
    ...over,
  };
}

const resolved = (over: Partial<Notification> = {}): Notification =>
  notification({ key: 'api.latency:2:ops', status: 'resolved', endsAt: T1, ...over });

interface Received {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}
type Answer = { status: number; body?: string; headers?: Record<string, string> } | 'hang';

const servers: http.Server[] = [];
const smtpServers: SMTPServer[] = [];
afterEach(async () => {
  closeNotifiers();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
  await Promise.all(
    smtpServers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
});

/** A local HTTP receiver recording each request and answering with `answer` (or never). */
async function httpReceiver(answer: Answer = { status: 200, body: 'ok' }) {
  const received: Received[] = [];
  const server = http.createServer((request, response) => {
    let raw = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (raw += chunk));
    request.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      received.push({ url: request.url ?? '', headers: request.headers, body });
      if (answer === 'hang') return;
      response.writeHead(answer.status, answer.headers);
      response.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { received, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function failure(promise: Promise<unknown>): Promise<DeliveryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as DeliveryError,
  );
  if (error === undefined) throw new Error('the delivery resolved');
  return error;
}

describe('HTTP receivers', () => {
  it('webhook: the notification plus version 1, with the idempotency, content-type and user-agent headers', async () => {
    const { received, base } = await httpReceiver();
    const headers = { authorization: 'Bearer t0ken-t0ken', 'Idempotency-Key': 'not-mine' };
    await deliver({ name: 'hook', type: 'webhook', url: `${base}/alerts?x=1`, headers }, notification());
    expect(received).toHaveLength(1);
    expect(received[0]?.url).toBe('/alerts?x=1');
    expect(received[0]?.body).toEqual({ version: 1, ...notification() });
    expect(received[0]?.headers).toMatchObject({
      'content-type': 'application/json',
      'idempotency-key': 'api.latency:1:ops',
      'user-agent': 'bulwark-alerts',
      authorization: 'Bearer t0ken-t0ken',
    });
  });

  it('slack: text with status, severity and summary, a severity colour while firing and green once resolved', async () => {
    const { received, base } = await httpReceiver();
    const slack: Receiver = { name: 'chat', type: 'slack', url: `${base}/services/T0/B0/XyZ` };
    await deliver(slack, notification({ summary: 'queue <jobs> & more' }));
    await deliver(slack, resolved({ severity: 'warning' }));
    const [firing, done] = received.map(
      (r) => r.body as { text: string; attachments: Record<string, unknown>[] },
    );
    expect(firing?.text).toBe(':red_circle: [FIRING critical] queue &lt;jobs&gt; &amp; more (orders-api)');
    expect(firing?.attachments[0]).toMatchObject({
      color: '#E01E5A',
      title: '[FIRING critical] queue <jobs> & more',
      title_link: LINK,
    });
    expect(firing?.attachments[0]?.fields).toEqual(
      expect.arrayContaining([
        { title: 'Value', value: '0.73125', short: true },
        { title: 'Labels', value: 'route="/orders", team="core"', short: false },
      ]),
    );
    expect(done?.text).toBe(':white_check_mark: [RESOLVED] p99 latency above 500 ms (orders-api)');
    expect(done?.attachments[0]?.color).toBe('#2EB67D');
    expect(received[1]?.headers['idempotency-key']).toBe('api.latency:2:ops');
  });

  it('pagerduty: trigger then resolve with the same dedup_key, routing key, payload on the trigger', async () => {
    const { received, base } = await httpReceiver({ status: 202, body: '{"status":"success"}' });
    const pd: Receiver = { name: 'pd', type: 'pagerduty', routingKey: PD_KEY, url: `${base}/v2/enqueue` };
    await deliver(pd, notification());
    await deliver(pd, resolved({ instance: 'orders-2' }));
    const [trigger, resolve] = received.map((r) => r.body);
    expect(trigger).toEqual({
      routing_key: PD_KEY,
      event_action: 'trigger',
      dedup_key: 'bulwark/orders-api/api.latency{route="/orders", team="core"}',
      payload: {
        summary: 'p99 latency above 500 ms (orders-api)',
        severity: 'critical',
        source: 'orders-1',
        timestamp: '2025-01-02T03:04:05.678Z',
        component: 'orders-api',
        class: 'api.latency',
        custom_details: {
          rule: 'api.latency',
          service: 'orders-api',
          instance: 'orders-1',
          value: 0.73125,
          labels: { team: 'core', route: '/orders' },
        },
      },
      client: 'Bulwark',
      client_url: LINK,
      links: [{ href: LINK, text: 'Alert in Bulwark' }],
    });
    expect(resolve).toEqual({ routing_key: PD_KEY, event_action: 'resolve', dedup_key: trigger?.dedup_key });
    const long = receiverPayload(pd, notification({ labels: { big: 'x'.repeat(400) } }));
    expect((long as { dedup_key: string }).dedup_key.length).toBeLessThanOrEqual(255);
  });

  it('alertmanager: version 4 webhook format with RFC 3339 times, the zero endsAt while firing and a Prometheus fingerprint', async () => {
    const { received, base } = await httpReceiver();
    const am: Receiver = { name: 'am', type: 'alertmanager', url: `${base}/hook` };
    await deliver(am, notification());
    await deliver(am, resolved());
    const labels = {
      team: 'core',
      route: '/orders',
      alertname: 'api.latency',
      severity: 'critical',
      service: 'orders-api',
      instance: 'orders-1',
    };
    const annotations = { summary: 'p99 latency above 500 ms', value: '0.73125' };
    expect(received[0]?.body).toEqual({
      version: '4',
      groupKey: '{}:{alertname="api.latency"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'am',
      groupLabels: { alertname: 'api.latency' },
      commonLabels: labels,
      commonAnnotations: annotations,
      externalURL: LINK,
      alerts: [
        {
          status: 'firing',
          labels,
          annotations,
          startsAt: '2025-01-02T03:04:05.678Z',
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: LINK,
          fingerprint: labelsFingerprint(labels),
        },
      ],
    });
    const alert = (received[1]?.body.alerts as Record<string, string>[])[0];
    expect(received[1]?.body.status).toBe('resolved');
    expect(alert).toMatchObject({ status: 'resolved', endsAt: '2025-01-02T03:05:35.678Z' });
    expect(alert?.startsAt).toMatch(RFC3339);
    expect(alert?.endsAt).toMatch(RFC3339);
    expect(alert?.fingerprint).toBe(labelsFingerprint(labels));
    // Prometheus' own test vector (prometheus/common model.labelSetToFingerprint).
    expect(labelsFingerprint({ name: 'garland, briggs', fear: 'love is not enough' })).toBe(
      '507a62d79ee76c9a',
    );
  });
});

describe('HTTP failures', () => {
  const secretUrl = (base: string) => `${base}/services/T0/SECRETPATH123?token=querysecret99`;

  it('a 500 rejects as retryable with the status and a body excerpt, never the URL path or query', async () => {
    const { base } = await httpReceiver({ status: 500, body: `database is down\n${'x'.repeat(500)}` });
    const error = await failure(
      deliver({ name: 'ops', type: 'slack', url: secretUrl(base) }, notification()),
    );
    expect(error.message).toMatch(
      /^Alert receiver "ops" \(slack, http:\/\/127\.0\.0\.1:\d+\): HTTP 500 Internal Server Error: database is down x+…$/,
    );
    expect(error).toMatchObject({ name: 'DeliveryError', retryable: true, status: 500, receiver: 'ops' });
    expect(error.message).not.toMatch(/SECRETPATH|querysecret/);
  });

  it('a 400 rejects with retryable false; a 429 is retryable with its Retry-After; a redirect is not followed', async () => {
    const bad = await httpReceiver({ status: 400, body: `{"message":"bad routing key ${PD_KEY}"}` });
    const pd: Receiver = { name: 'pd', type: 'pagerduty', routingKey: PD_KEY, url: bad.base };
    const error = await failure(deliver(pd, notification()));
    expect(error).toMatchObject({ retryable: false, status: 400 });
    expect(error.message).toContain('HTTP 400 Bad Request: {"message":"bad routing key ***"}');
    const limited = await httpReceiver({ status: 429, headers: { 'retry-after': '7' } });
    const slow = await failure(deliver({ name: 'w', type: 'webhook', url: limited.base }, notification()));
    expect(slow).toMatchObject({ retryable: true, status: 429, retryAfterMs: 7000 });
    expect(slow.message).toContain('HTTP 429 Too Many Requests (empty body)');
    const moved = await httpReceiver({ status: 302, headers: { location: '/elsewhere' } });
    const redirect = await failure(deliver({ name: 'w', type: 'webhook', url: moved.base }, notification()));
    expect(redirect).toMatchObject({ retryable: false, status: 302 });
    expect(moved.received).toHaveLength(1);
  });

  it('a receiver that never answers rejects after timeoutMs as retryable', async () => {
    const { base, received } = await httpReceiver('hang');
    // The receiver never answers, so only the 200 ms timeout can end the delivery (the message says so).
    const error = await failure(
      deliver({ name: 'am', type: 'alertmanager', url: base }, notification(), { timeoutMs: 200 }),
    );
    expect(received).toHaveLength(1);
    expect(error.message).toMatch(
      /^Alert receiver "am" \(alertmanager, http:\/\/127\.0\.0\.1:\d+\): no answer within 200 ms$/,
    );
    expect(error.retryable).toBe(true);
  });

  it('a refused connection rejects as retryable, naming the socket error; a bad URL is not retryable', async () => {
    const port = await freePort();
    const error = await failure(
      deliver({ name: 'hook', type: 'webhook', url: `http://127.0.0.1:${port}/x` }, notification()),
    );
    expect(error.message).toMatch(/connection failed: .*ECONNREFUSED/);
    expect(error).toMatchObject({ retryable: true });
    expect(error.cause).toBeInstanceOf(Error);
    const invalid = await failure(
      deliver({ name: 'hook', type: 'webhook', url: 'not a url?token=zzzzzzzzz' }, notification()),
    );
    expect(invalid).toMatchObject({ retryable: false });
    expect(invalid.message).not.toContain('zzzzzzzzz');
    await expect(
      deliver({ name: 'h', type: 'webhook', url: 'http://x' }, notification(), { timeoutMs: 0 }),
    ).rejects.toThrow(RangeError);
  });
});

/** A real SMTP server on a free port (no STARTTLS); `users` set makes AUTH required. */
async function smtpServer(opts: { users?: Record<string, string>; rejectRcpt?: boolean } = {}) {
  const mails: { from: string | undefined; to: string[]; user: unknown; raw: string }[] = [];
  const server = new SMTPServer({
    authOptional: opts.users === undefined,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username !== undefined && opts.users?.[auth.username] === auth.password)
        callback(null, { user: auth.username });
      else callback(new Error('Invalid username or password'));
    },
    onRcptTo(_address, _session, callback) {
      callback(
        opts.rejectRcpt === true ? Object.assign(new Error('No such user'), { responseCode: 550 }) : null,
      );
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom;
        mails.push({
          from: from === false ? undefined : from.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  smtpServers.push(server);
  const port = (server.server.address() as AddressInfo).port;
  return { mails, port };
}

/** Headers (lower-case names, unfolded) and the decoded text/plain and text/html parts of a raw message. */
function parseMail(raw: string) {
  const split = (part: string) => {
    const at = part.indexOf('\r\n\r\n');
    const headers = new Map<string, string>();
    const lines = part
      .slice(0, at)
      .replace(/\r\n[ \t]+/g, ' ')
      .split('\r\n');
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    return { headers, body: part.slice(at + 4) };
  };
  const decode = (headers: Map<string, string>, body: string): string => {
    const encoding = headers.get('content-transfer-encoding');
    if (encoding === 'base64') return Buffer.from(body, 'base64').toString('utf8');
    if (encoding !== 'quoted-printable') return body;
    const bytes = body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  };
  const top = split(raw);
  const boundary = /boundary="?([^";]+)"?/.exec(top.headers.get('content-type') ?? '')?.[1] ?? '';
  const parts = top.body
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((p) => split(p.replace(/^\r\n/, '')));
  const part = (type: string) => {
    const found = parts.find((p) => p.headers.get('content-type')?.startsWith(type));
    return found === undefined ? '' : decode(found.headers, found.body).replace(/\r\n/g, '\n');
  };
  return { headers: top.headers, text: part('text/plain'), html: part('text/html') };
}

describe('email receiver', () => {
  const email = (port: number, over: Partial<Extract<Receiver, { type: 'email' }>> = {}): Receiver => ({
    name: 'mail',
    type: 'email',
    smtp: { host: '127.0.0.1', port },
    from: 'Bulwark <alerts@example.com>',
    to: ['oncall@example.com', 'lead@example.com'],
    ...over,
  });

  it('sends subject, recipients, text and HTML bodies with labels, value and times, and key headers', async () => {
    const { mails, port } = await smtpServer();
    await deliver(email(port), notification());
    closeNotifiers();
    await deliver(email(port), resolved({ summary: 'p99 <latency>' }));
    expect(mails).toHaveLength(2);
    expect(mails[0]).toMatchObject({
      from: 'alerts@example.com',
      to: ['oncall@example.com', 'lead@example.com'],
    });
    const first = parseMail(mails[0]?.raw ?? '');
    expect(first.headers.get('subject')).toBe('[FIRING critical] p99 latency above 500 ms');
    expect(first.headers.get('x-bulwark-key')).toBe('api.latency:1:ops');
    expect(first.headers.get('message-id')).toMatch(/^<[0-9a-f]{32}@example\.com>$/);
    expect(first.text).toContain(
      'Severity: critical\nRule: api.latency\nService: orders-api\nInstance: orders-1\nValue: 0.73125\n' +
        'Started: 2025-01-02T03:04:05.678Z\n\nLabels:\n  route=/orders\n  team=core\n',
    );
    expect(first.text).toContain('Details: https://admin.example.com/alerts/api.latency');
    expect(first.html).toContain('<th align="left">Value</th><td>0.73125</td>');
    const second = parseMail(mails[1]?.raw ?? '');
    expect(second.headers.get('subject')).toBe('[RESOLVED] p99 <latency>');
    expect(second.text).toContain('Ended: 2025-01-02T03:05:35.678Z');
    expect(second.html).toContain('[RESOLVED] p99 &lt;latency&gt;');
    expect(second.headers.get('message-id')).not.toBe(first.headers.get('message-id'));
  });

  it('authenticates with the configured user; a wrong password is a non-retryable rejection without the password', async () => {
    const { mails, port } = await smtpServer({ users: { alerts: 'right-pass' } });
    await deliver(
      email(port, { smtp: { host: '127.0.0.1', port, auth: { user: 'alerts', pass: 'right-pass' } } }),
      notification(),
    );
    expect(mails[0]?.user).toBe('alerts');
    const wrong = email(port, {
      name: 'mail-2',
      smtp: { host: '127.0.0.1', port, auth: { user: 'alerts', pass: 'WRONG-pass-1' } },
    });
    const error = await failure(deliver(wrong, notification()));
    expect(error).toMatchObject({ retryable: false, status: 535 });
    expect(error.message).toMatch(
      /^Alert receiver "mail-2" \(email, smtp 127\.0\.0\.1:\d+\): SMTP error EAUTH: /,
    );
    expect(error.message).not.toContain('WRONG-pass-1');
  });

  it('a rejected recipient is not retryable; a server that is down or never greets is retryable', async () => {
    const rejecting = await smtpServer({ rejectRcpt: true });
    const rcpt = await failure(deliver(email(rejecting.port), notification()));
    expect(rcpt).toMatchObject({ retryable: false, status: 550 });
    expect(rcpt.message).toContain('No such user');
    const down = await failure(
      deliver(email(await freePort(), { name: 'down' }), notification(), { timeoutMs: 1000 }),
    );
    expect(down.message).toMatch(/SMTP error \w+: .*ECONNREFUSED/);
    expect(down.retryable).toBe(true);
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const mute = await failure(deliver(email(port, { name: 'mute' }), notification(), { timeoutMs: 300 }));
      expect(mute.message).toContain('no answer within 300 ms');
      expect(mute.retryable).toBe(true);
    } finally {
      closeNotifiers();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('validateReceiver', () => {
  it('accepts every well-formed receiver type', () => {
    const good: unknown[] = [
      { name: 'a', type: 'webhook', url: 'https://example.com/h', headers: { authorization: 'Bearer x' } },
      { name: 'b', type: 'slack', url: 'https://hooks.slack.com/services/T/B/X' },
      { name: 'c', type: 'pagerduty', routingKey: 'k'.repeat(32) },
      { name: 'd', type: 'alertmanager', url: 'http://localhost:9093/hook' },
      {
        name: 'e',
        type: 'email',
        smtp: { host: 'h', port: 587, auth: { user: 'u', pass: 'p' } },
        from: 'a@b.c',
        to: ['x@y.z'],
      },
    ];
    good.forEach((receiver, i) => expect(validateReceiver(receiver, `receivers[${i}]`)).toEqual([]));
  });

  it('names each bad field and never quotes a value', () => {
    expect(validateReceiver({ name: 'x', type: 'slack', url: 'ftp://h' }, 'receivers[2]')).toEqual([
      { field: 'receivers[2].url', message: 'must be an http: or https: URL' },
    ]);
    /** The fields named, without the `receivers[2]` prefix. */
    const fields = (value: unknown) =>
      validateReceiver(value, 'receivers[2]')
        .map((p) => p.field.replace('receivers[2]', '') || '(itself)')
        .join(' ');
    expect(fields(null)).toBe('(itself)');
    expect(fields({ name: 'x', type: 'sms' })).toBe('.type');
    expect(fields({ name: '', type: 'alertmanager', url: 'nope' })).toBe('.name .url');
    expect(fields({ name: 'pd', type: 'pagerduty', routing_key: 'abc' })).toBe('.routingKey .routing_key');
    const headers = { 'bad name': 'v', authorization: 'a\nb', n: 1 };
    expect(fields({ name: 'w', type: 'webhook', url: 'https://x', headers })).toBe(
      '.headers.bad name .headers.authorization .headers.n',
    );
    const smtp = { host: '', port: 0, secure: 'yes', auth: { user: 'u', pass: 5 }, tls: {} };
    expect(fields({ name: 'm', type: 'email', smtp, from: 'nobody', to: ['ok@x.y', 'bad'] })).toBe(
      '.smtp.host .smtp.port .smtp.secure .smtp.auth.pass .smtp.tls .from .to[1]',
    );
    expect(fields({ name: 'm', type: 'email', smtp: { host: 'h', port: 25 }, from: 'a@b.c', to: [] })).toBe(
      '.to',
    );
    const secret = {
      name: 'w',
      type: 'webhook',
      url: 'gopher://h/secret-path',
      headers: { x: 'top\nsecret' },
    };
    expect(JSON.stringify(validateReceiver(secret, 'r'))).not.toMatch(/secret/);
  });
});
