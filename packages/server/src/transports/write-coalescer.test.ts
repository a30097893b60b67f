import { describe, expect, it } from 'vitest';
import { WriteCoalescer } from './write-coalescer.js';

function fakeSocket() {
  const calls: string[] = [];
  return { calls, cork: () => calls.push('cork'), uncork: () => calls.push('uncork') };
}

describe('WriteCoalescer', () => {
  it('corks each socket once per turn and uncorks all of them in one scheduled flush', () => {
    const scheduled: Array<() => void> = [];
    const coalescer = new WriteCoalescer((fn) => scheduled.push(fn));
    const a = fakeSocket();
    const b = fakeSocket();
    coalescer.hold(a);
    coalescer.hold(a);
    coalescer.hold(b);
    expect(a.calls).toEqual(['cork']);
    expect(b.calls).toEqual(['cork']);
    expect(scheduled).toHaveLength(1);
    scheduled[0]!();
    expect(a.calls).toEqual(['cork', 'uncork']);
    expect(b.calls).toEqual(['cork', 'uncork']);
    coalescer.hold(a);
    expect(a.calls).toEqual(['cork', 'uncork', 'cork']);
    expect(scheduled).toHaveLength(2);
  });

  it('with the default scheduler, writes of one turn leave together after it', async () => {
    const coalescer = new WriteCoalescer();
    const a = fakeSocket();
    coalescer.hold(a);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(a.calls).toEqual(['cork', 'uncork']);
  });
});
