/** A prom-client metric as tests read it: its samples with their labels. */
export interface ReadableMetric {
  get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }>;
}

/** The sum of a counter's samples whose labels include every one of `labels` (all samples when none are given). */
export async function counterTotal(metric: ReadableMetric, labels: Record<string, string> = {}): Promise<number> {
  return (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}
