/**
 * `p`, or a rejection once `ms` have passed ("<what> timed out after <ms> ms"). The timer is
 * cleared when `p` settles first. `p` itself is not cancelled: a caller that owns a signal should
 * pass it on as well.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what?: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what ? `${what} ` : ""}timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
