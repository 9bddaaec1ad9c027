import type * as SentryNode from '@sentry/node';
import type { Logger } from 'pino';
import type { CaptureContext } from './types.js';

type SentryModule = typeof SentryNode;
type SentryScope = InstanceType<SentryModule['Scope']>;
type SentryClient = InstanceType<SentryModule['NodeClient']>;

/** Options of {@link SentryForwarder.create}. */
export interface SentryOptions {
  dsn: string;
  release: string;
  environment: string;
  serverName?: string;
  logger: Logger;
}

/**
 * Forwards captured errors to Sentry with `@sentry/node`, loaded only when a DSN is set (dynamic
 * import). It uses its own client and scope, not Sentry's global one: it installs no global
 * handlers and instruments nothing (Bulwark captures; this only sends), and an app that runs its
 * own Sentry setup is left alone. Sending is Sentry's asynchronous transport with its bounded
 * buffer: an unreachable, failing or hanging Sentry costs a capture nothing and never throws.
 */
export class SentryForwarder {
  readonly #client: SentryClient;
  readonly #scope: SentryScope;
  readonly #logger: Logger;
  #failed = false;

  private constructor(client: SentryClient, scope: SentryScope, logger: Logger) {
    this.#client = client;
    this.#scope = scope;
    this.#logger = logger;
  }

  /** The forwarder, or undefined (logged) when `@sentry/node` cannot be loaded or the DSN is refused. */
  static async create(opts: SentryOptions): Promise<SentryForwarder | undefined> {
    try {
      const Sentry: SentryModule = await import('@sentry/node');
      const client = new Sentry.NodeClient({
        dsn: opts.dsn,
        release: opts.release,
        environment: opts.environment,
        ...(opts.serverName === undefined ? {} : { serverName: opts.serverName }),
        transport: Sentry.makeNodeTransport,
        stackParser: Sentry.defaultStackParser,
        integrations: [Sentry.linkedErrorsIntegration()],
        // Bulwark samples before forwarding (flag bulwark.errors.sample).
        sampleRate: 1,
        sendClientReports: false,
      });
      const scope = new Sentry.Scope();
      scope.setClient(client);
      client.init();
      return new SentryForwarder(client, scope, opts.logger);
    } catch (error) {
      opts.logger.warn({ err: error }, 'errors: Sentry forwarding is off (cannot start @sentry/node)');
      return undefined;
    }
  }

  /** Sends one error (never throws). */
  forward(error: unknown, context: CaptureContext, fingerprint: string): void {
    try {
      const scope = this.#scope.clone();
      scope.setFingerprint([fingerprint]);
      scope.setLevel(context.level ?? 'error');
      if (context.tags !== undefined) scope.setTags(context.tags);
      if (context.user !== undefined) scope.setUser(context.user);
      if (context.request !== undefined) scope.setContext('request', { ...context.request });
      scope.captureException(error, { mechanism: { type: 'bulwark', handled: context.handled ?? true } });
    } catch (failure) {
      if (!this.#failed) this.#logger.warn({ err: failure }, 'errors: could not forward an error to Sentry');
      this.#failed = true;
    }
  }

  /** Waits at most `timeoutMs` for queued events to be sent; false if some were not. */
  async flush(timeoutMs: number): Promise<boolean> {
    try {
      return await this.#client.flush(timeoutMs);
    } catch {
      return false;
    }
  }

  /** Flushes for at most `timeoutMs`, then stops the client. */
  async close(timeoutMs: number): Promise<void> {
    try {
      await this.#client.close(timeoutMs);
    } catch {
      // Nothing more to send, or it could not be: either way we are done.
    }
  }
}
