import {
  ErrorCode,
  OpenFeatureEventEmitter,
  ProviderEvents,
  type EvaluationContext as OpenFeatureContext,
  type JsonValue,
  type Provider,
  type ResolutionDetails,
} from '@openfeature/server-sdk';
import type { FlagService } from './service.js';
import type { EvaluationDetails, FlagType, FlagValue } from './types.js';

/**
 * An OpenFeature server provider over Bulwark's flags, so application code can use the standard
 * API (`OpenFeature.setProvider(new BulwarkFlagProvider(bulwark.flags))`, then
 * `client.getBooleanValue(...)`). Evaluation is in memory; details carry the variant, the reason
 * (STATIC, TARGETING_MATCH, SPLIT, DISABLED, DEFAULT, ERROR) and, on a rule match, the rule's name
 * as flag metadata. A change to any flag emits `PROVIDER_CONFIGURATION_CHANGED` with its key.
 */
export class BulwarkFlagProvider implements Provider {
  readonly metadata = { name: 'bulwark' } as const;
  readonly runsOn = 'server' as const;
  readonly events = new OpenFeatureEventEmitter();
  readonly #flags: FlagService;

  constructor(flags: FlagService) {
    this.#flags = flags;
    flags.onChange((change) =>
      this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged: [change.key] }),
    );
  }

  resolveBooleanEvaluation(
    key: string,
    defaultValue: boolean,
    context: OpenFeatureContext,
  ): Promise<ResolutionDetails<boolean>> {
    return Promise.resolve(this.#resolve(key, defaultValue, context, 'boolean'));
  }

  resolveStringEvaluation(
    key: string,
    defaultValue: string,
    context: OpenFeatureContext,
  ): Promise<ResolutionDetails<string>> {
    return Promise.resolve(this.#resolve(key, defaultValue, context, 'string'));
  }

  resolveNumberEvaluation(
    key: string,
    defaultValue: number,
    context: OpenFeatureContext,
  ): Promise<ResolutionDetails<number>> {
    return Promise.resolve(this.#resolve(key, defaultValue, context, 'number'));
  }

  resolveObjectEvaluation<T extends JsonValue>(
    key: string,
    defaultValue: T,
    context: OpenFeatureContext,
  ): Promise<ResolutionDetails<T>> {
    return Promise.resolve(this.#resolve(key, defaultValue, context, 'json'));
  }

  #resolve<T extends FlagValue>(
    key: string,
    defaultValue: T,
    context: OpenFeatureContext,
    type: FlagType,
  ): ResolutionDetails<T> {
    const details: EvaluationDetails<T> = this.#flags.evaluate(key, context, defaultValue, type);
    const resolution: ResolutionDetails<T> = { value: details.value, reason: details.reason };
    if (details.variant !== undefined) resolution.variant = details.variant;
    if (details.rule !== undefined) resolution.flagMetadata = { rule: details.rule };
    if (details.errorCode !== undefined) {
      resolution.errorCode = ErrorCode[details.errorCode];
      if (details.errorMessage !== undefined) resolution.errorMessage = details.errorMessage;
    }
    return resolution;
  }
}
