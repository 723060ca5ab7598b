/**
 * The one rule for reaching the API server, used by every command: the kubeconfig
 * file given (--kubeconfig), else the in-cluster ServiceAccount when running in a pod,
 * else KUBECONFIG, else ~/.kube/config (client-node reads those two itself).
 */
import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";

/** Where a pod's ServiceAccount token is mounted: present only when running in-cluster. */
const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else if (existsSync(SERVICE_ACCOUNT_TOKEN)) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}
