import type { FlagDefinition, TargetingRule } from '../../src/flags/types.js';

/** The rule most flag tests use: staff (an `@acme.test` e-mail) get `on`. */
export const staffRule: TargetingRule = {
  name: 'staff',
  conditions: [{ attribute: 'email', op: 'endsWith', values: ['@acme.test'] }],
  variant: 'on',
};

/** A boolean flag, off by default, on for staff. */
export const checkoutFlag: FlagDefinition = {
  key: 'new-checkout',
  type: 'boolean',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  enabled: true,
  rules: [staffRule],
};
