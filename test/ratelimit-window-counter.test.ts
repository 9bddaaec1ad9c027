// The in-memory window counter's bookkeeping (pure logic): windows roll, and what Redis decided is
// noted only up to a bounded number of keys per window.
import { describe, expect, it } from 'vitest';
import { NOTED_KEYS_MAX, WindowCounter } from '../src/ratelimit/window-counter.js';

describe('WindowCounter', () => {
  it('counts per key within a window, drops the counts when the next window starts', () => {
    const counter = new WindowCounter(5);
    expect(counter.add('a', 2, 7)).toBe(2);
    counter.note('a', 1, 7);
    expect(counter.add('a', 1, 7)).toBe(4);
    expect(counter.add('a', 1, 6)).toBe(5); // a clock that stepped back counts in the current window
    expect(counter.add('a', 1, 8)).toBe(1);
    expect(counter.size).toBe(1);
  });

  it('notes at most NOTED_KEYS_MAX keys per window, and keeps counting the keys it holds', () => {
    const counter = new WindowCounter(5);
    for (let i = 0; i < NOTED_KEYS_MAX + 10; i += 1) counter.note(`k${i}`, 1, 1);
    expect(counter.size).toBe(NOTED_KEYS_MAX);
    counter.note('k0', 1, 1);
    expect(counter.add('k0', 1, 1)).toBe(3);
    expect(counter.add(`k${NOTED_KEYS_MAX}`, 1, 1)).toBe(1); // not noted: starts from zero
    counter.note('fresh', 1, 2);
    expect(counter.size).toBe(1);
  });
});
