/**
 * What bench/kubernetes-store.mjs uses of the kubernetes store (docs/high-availability.md):
 * a store opened on a namespace, for the scale figures (objects written, a fresh replica's
 * list into its cache).
 */
export { loadKubeConfig } from "../kube/kubeConfig.js";
export { storeSecrets } from "../kube/storeSecrets.js";
export { KubernetesKeyStore } from "../kubestore/kubernetesKeyStore.js";
export {
  aliasStoreObject,
  grantStoreObject,
  keyStoreObject,
} from "../kubestore/kubernetesKeyStore.js";
