// The load shedder's rules on a driven clock: how the adaptive limit moves (and what it ignores),
// who is admitted, queued, refused or dropped, in which order, and how the shedding curve rises and
// falls. protection-http.test.ts and protection-overload.test.ts show the same through real HTTP.
import { describe, expect, it } from 'vitest';
import { AdaptiveLimit } from '../src/protection/limit.js';
import { Shedder } from '../src/protection/shedder.js';
import type { ShedReason, Waiter } from '../src/protection/types.js';

const calm = { delayP99Ms: 1, utilisation: 0.3, gcPause: false };

/** A window of `count` samples of `latencyMs` each, with `inFlight` requests in flight at every admission. */
function window(limit: AdaptiveLimit, count: number, latencyMs: number, inFlight: number): void {
  for (let i = 0; i < count; i++) {
    limit.inFlight(inFlight);
    limit.sample(latencyMs);
  }
}

describe('AdaptiveLimit', () => {
  it('grows by √limit while the traffic fills it and nothing waits', () => {
    const limit = new AdaptiveLimit({ initial: 16 });
    window(limit, 20, 10, 12);
    expect(limit.update(0)).toBe('up');
    expect(limit.limit).toBeCloseTo(16 + 4);
  });

  it('does not grow when the traffic leaves most of it unused (an idle limit proves nothing)', () => {
    const limit = new AdaptiveLimit({ initial: 40 });
    window(limit, 20, 10, 5);
    expect(limit.update(0)).toBe('hold');
    expect(limit.limit).toBe(40);
  });

  it('shrinks once latency says requests wait, and holds inside the tolerance band', () => {
    const limit = new AdaptiveLimit({ initial: 20, smoothing: 1 });
    window(limit, 20, 10, 20);
    limit.update(0); // baseline 10 ms
    const grown = limit.limit;
    // 20 in flight at 2× the baseline latency: 10 of them wait, above 6 × log10(limit).
    window(limit, 20, 20, 20);
    expect(limit.update(100)).toBe('down');
    expect(limit.limit).toBeLessThan(grown);
    // 20 in flight at 1.35× the baseline: about 5 wait, inside the band: hold.
    const before = limit.limit;
    window(limit, 20, 13.5, 20);
    expect(limit.update(200)).toBe('hold');
    expect(limit.limit).toBe(before);
    expect(limit.waiting).toBeGreaterThan(4);
  });

  it('comes down from far too high within a few windows, never below its minimum', () => {
    // No bandwidth-delay floor: this is the descent alone (the floor has its own test below).
    const limit = new AdaptiveLimit({ initial: 200, min: 4, smoothing: 1, bdpGain: 0 });
    window(limit, 50, 5, 150);
    limit.update(0);
    let now = 0;
    for (let i = 0; i < 5; i++) {
      window(limit, 50, 100, 150);
      limit.update((now += 100));
    }
    expect(limit.limit).toBeLessThan(20);
    for (let i = 0; i < 20; i++) {
      window(limit, 50, 100, 150);
      limit.update((now += 100));
    }
    expect(limit.limit).toBe(4);
  });

  it('does not shrink for a window with a long GC pause, nor grow while the event loop is hot', () => {
    const limit = new AdaptiveLimit({ initial: 20, smoothing: 1 });
    window(limit, 20, 10, 20);
    limit.update(0);
    const start = limit.limit;
    window(limit, 20, 40, 20);
    expect(limit.update(100, { gcPause: true })).toBe('hold');
    expect(limit.limit).toBe(start);
    const hot = new AdaptiveLimit({ initial: 16 });
    window(hot, 20, 10, 12);
    expect(hot.update(0, { hot: true })).toBe('hold');
  });

  it('waits for enough samples, but closes a window after 1 s with any', () => {
    const limit = new AdaptiveLimit({ initial: 16, minSamples: 8 });
    limit.update(0);
    window(limit, 3, 10, 12);
    expect(limit.update(100)).toBe('hold');
    expect(limit.rttMs).toBeNaN();
    expect(limit.update(1100)).toBe('up');
    expect(limit.rttMs).toBe(10);
  });

  it('learns a slower baseline slowly (a rising floor), a faster one at once', () => {
    const limit = new AdaptiveLimit({ initial: 16, smoothing: 1, floorRisePerSecond: 0.01 });
    window(limit, 20, 10, 2);
    limit.update(0);
    expect(limit.minRttMs).toBe(10);
    window(limit, 20, 20, 2);
    limit.update(10_000); // 10 s later: the floor rises 10%, not to 20
    expect(limit.minRttMs).toBeCloseTo(11);
    window(limit, 20, 6, 2);
    limit.update(10_100);
    expect(limit.minRttMs).toBe(6);
  });

  it('never falls below twice the best answer rate of the last 10 s times the lowest latency', () => {
    // A saturated event loop: latency rises with everything it reads (refusals too), whatever the
    // limit. Lowering the limit under the bandwidth-delay product would only refuse work.
    const descend = (bdpGain: number) => {
      const limit = new AdaptiveLimit({ initial: 100, smoothing: 1, bdpGain });
      let now = 0;
      limit.update(now); // opens the first window
      window(limit, 1000, 2, 60); // 1000 answers in 100 ms at 2 ms: 10 a ms
      limit.update((now += 100));
      for (let i = 0; i < 30; i++) {
        window(limit, 1000, 8, 60); // 4× the latency, the same rate
        limit.update((now += 100));
      }
      return { limit, now };
    };
    const floored = descend(2);
    // 2 × 10 a ms × 2 ms (the lowest latency rises 0.5 % a second towards the current one).
    expect(floored.limit.floor).toBeGreaterThan(40);
    expect(floored.limit.floor).toBeLessThan(41);
    expect(floored.limit.limit).toBeGreaterThanOrEqual(40); // it came down to the floor, no lower
    expect(floored.limit.limit).toBeLessThan(41);
    expect(descend(0).limit.limit).toBe(4); // without the floor, all the way to the minimum
    // The rate is remembered 10 s: at a tenth of it since, the floor follows it down.
    const { limit } = floored;
    let { now } = floored;
    for (let i = 0; i < 110; i++) {
      window(limit, 100, 8, 60);
      limit.update((now += 100));
    }
    expect(limit.floor).toBeLessThan(10);
    expect(limit.limit).toBeLessThan(10);
    // A limit found below the floor (lowered before the rate was known) goes straight back up to
    // it, unless the loop is hot.
    const low = () => {
      const l = new AdaptiveLimit({ initial: 10, smoothing: 1 });
      l.update(0);
      window(l, 1000, 8, 10); // 10 a ms at 8 ms: a floor of 160
      return l;
    };
    const hot = low();
    expect(hot.update(100, { hot: true })).toBe('hold');
    expect(hot.limit).toBe(10);
    const calmLimit = low();
    expect(calmLimit.update(100)).toBe('up');
    expect(calmLimit.limit).toBeCloseTo(160);
  });

  it('counts changes of direction, not every move', () => {
    const limit = new AdaptiveLimit({ initial: 16, smoothing: 1 });
    window(limit, 20, 10, 16);
    limit.update(0); // up
    window(limit, 20, 10, 20);
    limit.update(100); // up
    expect(limit.reversals).toBe(0);
    window(limit, 20, 30, 24);
    limit.update(200); // down
    expect(limit.reversals).toBe(1);
  });

  it('while shedding and its last move was down, grows again only once three windows in a row say little waits', () => {
    const run = (shedding: boolean) => {
      const limit = new AdaptiveLimit({ initial: 20, smoothing: 1, bdpGain: 0 });
      let now = 0;
      const step = (latencyMs: number) => {
        window(limit, 20, latencyMs, 20);
        return limit.update((now += 100), { shedding });
      };
      step(10); // baseline 10 ms: up
      expect(step(30)).toBe('down');
      return { limit, step };
    };
    const { limit, step } = run(true);
    // One quiet window, then a busy one: no probe up (the probe and its way back were two reversals).
    expect(step(10)).toBe('hold');
    expect(step(13.5)).toBe('hold');
    expect(step(10)).toBe('hold');
    expect(step(10)).toBe('hold');
    const before = limit.limit;
    expect(step(10)).toBe('up'); // the third quiet window in a row
    expect(limit.limit).toBeCloseTo(before + Math.sqrt(before));
    expect(step(10)).toBe('up'); // growing on: one window is enough, as before any shrink
    expect(limit.reversals).toBe(2);
    // Nothing refused (a closed loop whose clients wait in the queue): it grows at the first.
    expect(run(false).step(10)).toBe('up');
  });

  it('takes a shrink of less than one request for no move (it changes no admission)', () => {
    // A saturated loop holds the limit on its floor, which moves a little with the rate and the
    // lowest latency; a shrink clamped onto it moved the limit by a fraction, and the floor's next
    // rise moved it back: a change of direction each time.
    const limit = new AdaptiveLimit({ initial: 100, smoothing: 1 });
    let now = 0;
    limit.update(now);
    window(limit, 1000, 2, 60); // 10 answers a ms at 2 ms: a floor of 40
    limit.update((now += 100));
    for (let i = 0; i < 30; i++) {
      window(limit, 1000, 8, 60);
      limit.update((now += 100));
    }
    expect(limit.limit - limit.floor).toBeLessThan(1);
    const reversals = limit.reversals;
    const moves: string[] = [];
    // 1 % fewer answers: once the best rate is 10 s old, the floor drops by ~0.4 of a request,
    // then rises again with the lowest latency. Far too many wait all along: the limit would shrink.
    for (let i = 0; i < 150; i++) {
      window(limit, 990, 8, 60);
      moves.push(limit.update((now += 100)));
    }
    expect(moves).not.toContain('down');
    expect(moves).toContain('up'); // it still follows the floor up
    expect(limit.reversals).toBe(reversals);
  });
  it("stops a shrink at the caller's room, and never rises to it (the room only holds)", () => {
    const limit = new AdaptiveLimit({ initial: 100, smoothing: 1, bdpGain: 0 });
    let now = 0;
    limit.update(now);
    window(limit, 1000, 2, 60); // the lowest latency: 2 ms
    limit.update((now += 100));
    window(limit, 1000, 8, 60); // far too many wait: it would shrink to ~94
    expect(limit.update((now += 100), { room: 97 })).toBe('down');
    expect(limit.limit).toBe(97);
    window(limit, 1000, 8, 60);
    expect(limit.update((now += 100), { room: 97 })).toBe('hold');
    window(limit, 1000, 8, 60);
    // A room above the limit holds it where it is: raising a limit to what the process holds would
    // follow an open overload up (the more admitted, the more held) with no end.
    expect(limit.update((now += 100), { room: 120 })).toBe('hold');
    expect(limit.limit).toBe(97);
    window(limit, 1000, 8, 60);
    expect(limit.update(now + 100)).toBe('down'); // no room: Vegas again
  });
});

/** A waiter that records how it ended. */
function waiter(shedder: Shedder, rank: number, opts: { deadlineAt?: number; gone?: () => boolean } = {}) {
  const ended: { admitted: boolean; reason?: ShedReason }[] = [];
  const w: Waiter = {
    rank,
    queuedAt: shedder.now(),
    deadlineAt: opts.deadlineAt ?? Number.POSITIVE_INFINITY,
    gone: opts.gone ?? (() => false),
    resume: (reason) => ended.push(reason === undefined ? { admitted: true } : { admitted: false, reason }),
  };
  return { w, ended };
}

/** A waiter for a request `admit` queued: admitted (expected to queue), then enqueued. */
function queued(shedder: Shedder, rank: number) {
  const made = waiter(shedder, rank);
  expect(shedder.admit(rank)).toBe('queued');
  shedder.enqueue(made.w);
  return made;
}

describe('Shedder', () => {
  const make = (limit: number, extra: ConstructorParameters<typeof Shedder>[0] = {}) => {
    const clock = { now: 0 };
    const shedder = new Shedder({
      limit: { initial: limit, min: limit, max: limit },
      now: () => clock.now,
      random: () => 0.5,
      ...extra,
    });
    return { shedder, clock };
  };

  it('keeps a share of the limit for critical requests', () => {
    const { shedder } = make(10);
    for (let i = 0; i < 8; i++) expect(shedder.admit(1)).toBe('admitted');
    expect(shedder.admit(1)).toBe('queued'); // default may use 80% of the limit
    expect(shedder.admit(2)).toBe('queued');
    expect(shedder.admit(0)).toBe('admitted');
    expect(shedder.admit(0)).toBe('admitted');
    expect(shedder.admit(0)).toBe('queued');
    expect(shedder.inFlight).toBe(10);
  });

  it('hands a freed slot to the most important waiter, first come first served while not overloaded', () => {
    const { shedder } = make(4);
    for (let i = 0; i < 4; i++) shedder.admit(0);
    const sheddable = waiter(shedder, 2);
    const first = waiter(shedder, 1);
    const second = waiter(shedder, 1);
    const critical = waiter(shedder, 0);
    for (const { w } of [sheddable, first, second, critical]) {
      expect(shedder.admit(w.rank)).toBe('queued');
      shedder.enqueue(w);
    }
    shedder.release(0, 5);
    expect(critical.ended).toEqual([{ admitted: true }]);
    shedder.release(0, 5);
    shedder.release(0, 5);
    expect(first.ended).toEqual([{ admitted: true }]);
    expect(second.ended).toEqual([{ admitted: true }]); // 3 in flight, under default's cap of 3.2
    expect(sheddable.ended).toEqual([]); // 4 in flight: over the cap
    expect(shedder.queued).toBe(1);
  });

  it('drops a waiter whose client left or whose deadline passed, before it runs', () => {
    const { shedder, clock } = make(1);
    shedder.admit(0);
    let left = false;
    const gone = waiter(shedder, 0, { gone: () => left });
    const late = waiter(shedder, 0, { deadlineAt: 50 });
    const fine = waiter(shedder, 0);
    for (const { w } of [gone, late, fine]) {
      shedder.admit(0);
      shedder.enqueue(w);
    }
    left = true;
    clock.now = 60;
    shedder.release(0, 5);
    expect(gone.ended).toEqual([{ admitted: false, reason: 'client-gone' }]);
    expect(late.ended).toEqual([{ admitted: false, reason: 'deadline' }]);
    expect(fine.ended).toEqual([{ admitted: true }]);
    expect(shedder.counts.shed[0]).toMatchObject({ 'client-gone': 1, deadline: 1 });
  });

  it('refuses a wait longer than 100 ms, or 5 ms once the queue has not emptied for 100 ms', () => {
    const { shedder, clock } = make(1);
    shedder.admit(1);
    const old = queued(shedder, 1);
    clock.now = 99;
    shedder.tick(calm);
    expect(old.ended).toEqual([]);
    clock.now = 101;
    shedder.tick(calm);
    expect(old.ended).toEqual([{ admitted: false, reason: 'queue-timeout' }]);
    // A new waiter at 101; the queue then stays non-empty past 100 ms: the timeout becomes 5 ms.
    const next = queued(shedder, 1);
    clock.now = 199;
    const after = queued(shedder, 1);
    clock.now = 203;
    shedder.tick(calm);
    expect(after.ended).toEqual([]);
    clock.now = 205;
    shedder.tick(calm);
    expect(next.ended[0]?.reason).toBe('queue-timeout');
    expect(after.ended[0]?.reason).toBe('queue-timeout');
  });

  it('takes a queue that stands but serves its waiters within the target for no overload (CoDel)', () => {
    // A closed loop of clients at full speed keeps a queue standing: two wait at every moment, the
    // oldest is served and a new one comes; each waits 4 ms.
    const { shedder, clock } = make(1);
    shedder.admit(1);
    const line = [queued(shedder, 1), queued(shedder, 1)];
    const step = (t: number, ms: number) => {
      clock.now = t;
      shedder.release(1, ms);
      const served = line.shift();
      if (ms * 2 < 5) expect(served?.ended).toEqual([{ admitted: true }]); // waited within the target
      while (line.length < 2) line.push(queued(shedder, 1));
      if (t % 100 < ms) shedder.tick(calm);
    };
    for (let t = 2; t <= 1000; t += 2) step(t, 2);
    expect(shedder.queued).toBe(2);
    expect(shedder.refusal).toEqual([0, 0, 0]);
    expect(shedder.state().overloaded).toBe(false);
    // Once every waiter has waited longer than the target (6 ms) for an interval, it is overload.
    for (let t = 1003; t <= 1150; t += 3) step(t, 3);
    expect(shedder.state().overloaded).toBe(true);
    expect(shedder.refusal[2]).toBeGreaterThan(0);
    expect(shedder.counts.shed[1]?.['queue-timeout']).toBeGreaterThan(0);
  });

  it('serves the newest first while overloaded (adaptive LIFO)', () => {
    const { shedder, clock } = make(1, { queueTargetMs: 1000, queueIntervalMs: 100 });
    shedder.admit(1);
    const a = queued(shedder, 1);
    clock.now = 150;
    const b = queued(shedder, 1);
    shedder.release(1, 5);
    expect(b.ended).toEqual([{ admitted: true }]);
    expect(a.ended).toEqual([]);
  });

  it('when the queue is full, a more important request takes the place of the least important one', () => {
    const { shedder } = make(4, { queueFactor: 0 }); // room for 16 waiters
    for (let i = 0; i < 4; i++) shedder.admit(0);
    const waiting = Array.from({ length: 16 }, () => waiter(shedder, 2));
    for (const { w } of waiting) {
      expect(shedder.admit(2)).toBe('queued');
      shedder.enqueue(w);
    }
    expect(shedder.admit(2)).toBe('queue-full');
    expect(shedder.admit(0)).toBe('queued');
    expect(waiting.at(-1)?.ended).toEqual([{ admitted: false, reason: 'queue-full' }]);
  });

  it('has room for as many waiters as drain within the target, when that is more', () => {
    const { shedder, clock } = make(10, { queueFactor: 0 });
    // 10 answers a millisecond: 10 000 a second drain 50 within the 5 ms target.
    for (let i = 0; i < 15; i++) {
      for (let j = 0; j < 10; j++) expect(shedder.admit(0)).toBe('admitted');
      clock.now += 1;
      for (let j = 0; j < 10; j++) shedder.release(0, 1);
      shedder.tick(calm);
    }
    for (let j = 0; j < 10; j++) shedder.admit(0);
    for (let i = 0; i < 40; i++) queued(shedder, 1); // more than the 16 of the limit's room
    let room = 40;
    while (shedder.admit(1) === 'queued') {
      shedder.enqueue(waiter(shedder, 1).w);
      room += 1;
    }
    expect(room).toBeGreaterThanOrEqual(45);
    expect(room).toBeLessThanOrEqual(50);
  });

  it('past its room, takes as many as the process held before while the queue is good and no default request is refused (a closed loop)', () => {
    // A closed loop of 60 clients, all in flight under the initial limit; then the limit falls to 20
    // (a saturated loop reads as waiting): the 40 clients answered meanwhile come straight back.
    const clock = { now: 0 };
    const shedder = new Shedder({
      limit: { initial: 100, min: 4, max: 100, bdpGain: 0 },
      queueFactor: 0, // room for 16
      now: () => clock.now,
      random: () => 0.5,
    });
    for (let i = 0; i < 60; i++) expect(shedder.admit(1)).toBe('admitted');
    shedder.tick(calm); // 60 held
    clock.now = 50;
    for (let i = 0; i < 40; i++) shedder.release(1);
    shedder.adaptive.limit = 20; // default may use 16
    for (let i = 0; i < 40; i++) queued(shedder, 1); // 16 in the room, 24 past it
    expect(shedder.admit(1)).toBe('queue-full'); // a 61st: more than ever held
    clock.now = 100;
    shedder.tick(calm);
    expect(shedder.state().overloaded).toBe(true); // and that refusal is overload
    // Open overload holds ever more and is refused at the room: so is anything past it once the
    // curve refuses default requests (not sheddable only: a blip must not tip a closed loop) or the
    // queue is bad.
    shedder.release(1); // 59 in the process: one place under what was held
    expect(shedder.refusal[2]).toBeGreaterThan(0);
    queued(shedder, 1);
    shedder.release(1);
    shedder.refusal[1] = 0.05;
    expect(shedder.admit(1)).toBe('queue-full');
    shedder.refusal[1] = 0;
    queued(shedder, 1);
    shedder.release(1);
    clock.now = 250; // no waiter served first come for 150 ms: bad
    expect(shedder.admit(1)).toBe('queue-full');
  });

  it('while nothing is refused, does not lower the limit under what a closed loop needs to wait within the target', () => {
    // 100 clients, each back as soon as it is answered (or refused, one step later); a saturated
    // loop: the latency is 8× the lowest, so Vegas alone (no bandwidth-delay floor here) would
    // lower the limit to its minimum and the clients over it would wait in the queue, past CoDel's
    // 5 ms, until it called the queue bad and refused them.
    const run = (refuseOnePerTick: boolean, loop = calm, ticks = 40) => {
      const clock = { now: 0 };
      const shedder = new Shedder({
        limit: { initial: 100, min: 4, max: 200, bdpGain: 0, smoothing: 1 },
        now: () => clock.now,
        random: () => 0.5,
      });
      let inFlight = 0;
      let back = 100;
      let latency = 2;
      for (let tick = 0; tick < ticks; tick++) {
        for (let step = 0; step < 100; step++) {
          const arriving = back;
          back = 0;
          for (let k = 0; k < arriving; k++) {
            const admission = shedder.admit(1);
            if (admission === 'admitted') inFlight += 1;
            else if (admission === 'queued') {
              const { w } = waiter(shedder, 1);
              w.resume = (reason) => (reason === undefined ? (inFlight += 1) : (back += 1));
              shedder.enqueue(w);
            } else back += 1; // refused: back at the next step
          }
          clock.now += 1;
          // 10 answered a millisecond: 25 within half the target.
          for (let k = 0; k < 10 && inFlight > 0; k++) {
            inFlight -= 1;
            back += 1;
            shedder.release(1, latency);
          }
        }
        if (refuseOnePerTick) {
          shedder.refusal[2] = 1;
          expect(shedder.admit(2)).toBe('overload');
        }
        shedder.tick(loop);
        latency = 16;
      }
      return shedder;
    };
    const served = run(false);
    // The room: (100 held − 25 that drain within half the target) ÷ the 80 % of the limit a
    // default request may use: 93.75. The 25 over a default request's share wait 2.5 ms.
    expect(served.adaptive.limit).toBeGreaterThanOrEqual(93.75); // (the rate is smoothed: a hair over)
    expect(served.adaptive.limit).toBeLessThan(95);
    expect(served.shedTotal).toBe(0);
    // Anything refused (open overload refused at the room, the curve) and the floor is off.
    const refusing = run(true);
    expect(refusing.adaptive.limit).toBeLessThan(50);
    // So is a hot loop (without that guard, a full overload run's 2× critical p99 rose to 2.3–2.6 s).
    const hot = run(false, { delayP99Ms: 80, utilisation: 0.97, gcPause: false }, 8);
    expect(hot.adaptive.limit).toBeLessThan(50);
    expect(hot.refusal[1]).toBe(0); // the curve still refuses no default request: the hot loop did it
  });

  it('raises the curve lowest class first while overloaded, lowers it highest first once clear, more slowly', () => {
    const { shedder, clock } = make(100);
    shedder.admit(1); // a request in flight: the hot loop is serving requests
    const hot = { delayP99Ms: 80, utilisation: 0.97, gcPause: false };
    for (let i = 0; i < 20; i++) {
      clock.now += 100;
      shedder.tick(hot);
    }
    expect(shedder.refusal).toEqual([0, 0, 1]);
    for (let i = 0; i < 4; i++) {
      clock.now += 100;
      shedder.tick(hot);
    }
    expect(shedder.refusal[1]).toBeCloseTo(0.2);
    expect(shedder.admit(2)).toBe('overload');
    shedder.release(1, 5);
    expect(shedder.admit(0)).toBe('admitted'); // critical is never refused by the curve
    for (let i = 0; i < 10; i++) {
      clock.now += 100;
      shedder.tick(calm);
    }
    expect(shedder.refusal[1]).toBeCloseTo(0);
    expect(shedder.refusal[2]).toBe(1);
    clock.now += 100;
    shedder.tick(calm);
    expect(shedder.refusal[2]).toBeCloseTo(0.98);
  });

  it('does not count a hot loop as overload while no request runs (start-up, background work)', () => {
    const { shedder, clock } = make(100);
    for (let i = 0; i < 20; i++) {
      clock.now += 100;
      shedder.tick({ delayP99Ms: 80, utilisation: 0.99, gcPause: false });
    }
    expect(shedder.refusal).toEqual([0, 0, 0]);
  });

  it('does not count a busy machine as overload when this process is not the one busy', () => {
    const { shedder, clock } = make(100);
    for (let i = 0; i < 20; i++) {
      clock.now += 100;
      // Timers late by 80 ms but the loop mostly idle: another process has the CPU.
      shedder.tick({ delayP99Ms: 80, utilisation: 0.3, gcPause: false });
    }
    expect(shedder.refusal).toEqual([0, 0, 0]);
  });

  it('with per-client fairness, refuses a client holding its share only while overloaded', () => {
    const { shedder } = make(10, { clientShare: 0.3 });
    for (let i = 0; i < 5; i++) expect(shedder.admit(1, 'greedy')).toBe('admitted'); // not overloaded
    shedder.refusal[2] = 0.05; // overloaded: the curve refuses some sheddable requests
    expect(shedder.admit(1, 'greedy')).toBe('client-share');
    expect(shedder.admit(1, 'other')).toBe('admitted');
    for (let i = 0; i < 3; i++) shedder.release(1, 5, 'greedy');
    expect(shedder.admit(1, 'greedy')).toBe('admitted'); // 3 of a share of 3
    expect(shedder.admit(1, 'greedy')).toBe('client-share');
    expect(shedder.counts.shed[1]?.['client-share']).toBe(2);
  });

  it('says when to retry from the work ahead and the curve, between 1 and 30 s', () => {
    const { shedder } = make(10);
    expect(shedder.retryAfterSeconds()).toBe(1);
    shedder.refusal[2] = 1;
    expect(shedder.retryAfterSeconds()).toBe(5); // 50 ticks of 0.02 at 100 ms
  });
});
