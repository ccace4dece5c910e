// tollgate/metrics: what limiters report, for Prometheus (text or prom-client) and as denial logs.
/// <reference types="node" preserve="true" />
export { toPrometheus, registerPrometheus, metricsHandler, type PromClientLike, type PromRegistryLike } from './metrics/prometheus.js';
export { denialLogger, type DenialRecord } from './metrics/denial-log.js';
