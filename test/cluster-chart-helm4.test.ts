/** charts/keyhaven installed, upgraded and uninstalled by Helm 4 on the real API server. */
import { chartOnRealCluster } from "./chart/clusterSuite.js";
import { helm4 } from "./support/tools.js";

chartOnRealCluster("Helm 4.1", helm4, "kh4");
