/** What bench/admission*.mjs use of the webhook (see ./keyService.ts for why this file exists). */
export { WebhookServer } from "../webhook/server.js";
export { cachedNamespaceLabels } from "../webhook/startWebhook.js";
export { reconcileCertificates } from "../webhook/certificates.js";
