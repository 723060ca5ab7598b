/**
 * What bench/controller*.mjs use of the test support (the loopback API server, kube-up),
 * from one place, like src/bench/controller.ts for src/: a moved file breaks
 * `npm run typecheck` here instead of a benchmark at run time.
 */
export { startHttpApiServer, kubeconfigFor } from "../kube/httpApiServer.js";
export { applyCrds, auditArgs, readAudit } from "../kube/realCluster.js";
export { startControlPlane, createNamespace } from "./kubeUp.js";
