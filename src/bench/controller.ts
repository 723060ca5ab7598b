/**
 * What bench/controller*.mjs use of the operator (see ./keyService.ts for why this file
 * exists); with test/support/bench.ts, compiled into .tmp/bench-controller by
 * bench/lib/controllerBench.mjs.
 */
export { Manager } from "../controller/manager.js";
export { createKmsClient, countKmsCalls } from "../controller/kms.js";
export { ControllerMetrics } from "../controller/runtime/metrics.js";
export { clientNodeCluster } from "../kube/clientNodeCluster.js";
export { loadKubeConfig } from "../kube/kubeConfig.js";
export { isReady } from "../api/v1alpha1/conditions.js";
