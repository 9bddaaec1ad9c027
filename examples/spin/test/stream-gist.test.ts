// How finely the live stream tells places apart (routes.ts): each place among the first 20, beyond
// that a move of about 5%, so 10,000 places moving every second are not 10,000 messages a second.
import { describe, expect, it } from 'vitest';
import { placeGist } from '../src/routes.js';

describe('placeGist', () => {
  it('tells apart every place among the first 20 and places ~5% apart beyond, never merging a nearer place with a farther one', () => {
    for (let p = 1; p <= 20; p += 1) expect(placeGist(p)).toBe(p);
    for (let p = 21; p < 20_000; p += 1) expect(placeGist(p)).toBeGreaterThanOrEqual(placeGist(p - 1));
    expect(placeGist(4000)).toBe(placeGist(3990));
    expect(placeGist(4000)).not.toBe(placeGist(3800));
    expect(placeGist(100)).not.toBe(placeGist(95));
    expect(placeGist(21)).not.toBe(placeGist(20));
  });
});
