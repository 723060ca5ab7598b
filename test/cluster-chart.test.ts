/** charts/keyhaven installed, upgraded and uninstalled by Helm 3 on the real API server. */
import { chartOnRealCluster } from "./chart/clusterSuite.js";
import { helm3 } from "./support/tools.js";

chartOnRealCluster("Helm 3.17", helm3, "kh3");
