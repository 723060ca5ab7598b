/** Prometheus metrics of the controller (prom-client), on a registry of its own. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class ControllerMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<"controller" | "result">;
  readonly errors: Counter<"controller" | "reason">;
  readonly duration: Histogram<"controller">;
  readonly depth: Gauge<"controller">;
  readonly leader: Gauge;
  readonly watchErrors: Counter<"kind">;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.reconciles = new Counter({
      name: "keyhaven_controller_reconcile_total",
      help: "Reconciles by controller and result (success, requeue_after, error, terminal).",
      labelNames: ["controller", "result"],
      registers,
    });
    this.errors = new Counter({
      name: "keyhaven_controller_reconcile_errors_total",
      help: "Failed reconciles by controller and error name.",
      labelNames: ["controller", "reason"],
      registers,
    });
    this.duration = new Histogram({
      name: "keyhaven_controller_reconcile_duration_seconds",
      help: "Time per reconcile.",
      labelNames: ["controller"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.depth = new Gauge({
      name: "keyhaven_controller_workqueue_depth",
      help: "Keys waiting in the work queue.",
      labelNames: ["controller"],
      registers,
    });
    this.leader = new Gauge({
      name: "keyhaven_controller_is_leader",
      help: "1 while this replica holds the leader Lease.",
      registers,
    });
    this.watchErrors = new Counter({
      name: "keyhaven_controller_watch_errors_total",
      help: "List/watch errors by kind (the informer relists with backoff).",
      labelNames: ["kind"],
      registers,
    });
  }
}
