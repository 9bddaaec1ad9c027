import { GENDERS, type Gender, type Group, type GroupKey, type Seeking } from './types.js';

// A gender is one bit, a seeking set a 3-bit mask, a group the dense index gender * 8 + mask: the
// matcher and the estimator keep per-group state in plain arrays indexed by it.
const BIT: Readonly<Record<Gender, number>> = { woman: 1, man: 2, nonbinary: 4 };

/** Size of an array indexed by {@link groupIndex} (some slots, those with an empty mask, stay unused). */
export const GROUP_SLOTS = GENDERS.length * 8;

/** The bit mask of a seeking set (duplicates count once). */
export function seekingMask(seeking: readonly Gender[]): number {
  let mask = 0;
  for (const gender of seeking) mask |= BIT[gender];
  return mask;
}

/** The dense index of a group, 1 … {@link GROUP_SLOTS} − 1. */
export function groupIndex(group: Group): number {
  return GENDERS.indexOf(group.gender) * 8 + seekingMask(group.seeking);
}

function genderOf(index: number): Gender {
  return GENDERS[index >> 3] as Gender;
}

function seekingOf(mask: number): Seeking {
  return GENDERS.filter((gender) => (mask & BIT[gender]) !== 0) as unknown as Seeking;
}

/** The group at a dense index (the inverse of {@link groupIndex}). */
export function groupAt(index: number): Group {
  return { gender: genderOf(index), seeking: seekingOf(index & 7) };
}

/** A group's canonical key: `man:woman`, `woman:woman+nonbinary` (sought genders in GENDERS order). */
export function groupKey(group: Group): GroupKey {
  return `${group.gender}:${seekingOf(seekingMask(group.seeking)).join('+')}`;
}

/** Whether members of two groups may be paired: each one's gender is sought by the other. */
export function groupsCompatible(a: Group, b: Group): boolean {
  return (seekingMask(a.seeking) & BIT[b.gender]) !== 0 && (seekingMask(b.seeking) & BIT[a.gender]) !== 0;
}

/** Every valid group index (21 of them). */
export const GROUP_INDEXES: readonly number[] = GENDERS.flatMap((_, g) =>
  [1, 2, 3, 4, 5, 6, 7].map((mask) => g * 8 + mask),
);

/** The group at each dense index (undefined where the mask is empty), without allocating per lookup. */
export const GROUPS: readonly (Group | undefined)[] = Array.from({ length: GROUP_SLOTS }, (_, i) =>
  (i & 7) === 0 ? undefined : groupAt(i),
);

/** For each group index, the indexes of the groups compatible with it (itself included when so). */
export const COMPATIBLE: readonly (readonly number[])[] = Array.from({ length: GROUP_SLOTS }, (_, i) =>
  (i & 7) === 0 ? [] : GROUP_INDEXES.filter((j) => groupsCompatible(groupAt(i), groupAt(j))),
);
