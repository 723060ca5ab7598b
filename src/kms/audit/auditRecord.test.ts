import { describe, expect, it } from "vitest";
import { REDACTED_FIELDS } from "../../observability/logger.js";
import { auditRecordText, type AuditEventInput, type AuditServed } from "./auditRecord.js";

const KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const event = (overrides: Partial<AuditEventInput> = {}): AuditEventInput => ({
  requestId: "req-1",
  eventTime: new Date("2026-12-02T17:36:14.123Z"),
  eventSource: "kms.amazonaws.com",
  eventName: "Encrypt",
  userIdentity: { type: "IAMUser", arn: "arn:aws:iam::111122223333:user/alice" },
  requestParameters: { KeyId: "alias/orders", Plaintext: Buffer.from("secret") },
  resources: [KEY_ARN],
  ...overrides,
});

const SERVED: AuditServed = {
  eventId: "evt-1",
  region: "us-east-1",
  account: "111122223333",
  sourceIp: "::ffff:10.0.0.7",
  userAgent: 'aws-cli/2 "quoted"\n',
};

const parsed = (e: AuditEventInput) =>
  JSON.parse(`{${auditRecordText(e, SERVED)}}`) as Record<string, unknown>;

describe("auditRecordText", () => {
  it("is the CloudTrail record as JSON members, caller strings escaped", () => {
    expect(parsed(event())).toEqual({
      eventVersion: "1.08",
      userIdentity: { type: "IAMUser", arn: "arn:aws:iam::111122223333:user/alice" },
      eventTime: "2026-12-02T17:36:14Z",
      eventSource: "kms.amazonaws.com",
      eventName: "Encrypt",
      awsRegion: "us-east-1",
      sourceIPAddress: "10.0.0.7",
      userAgent: 'aws-cli/2 "quoted"\n',
      requestParameters: { keyId: "alias/orders" },
      responseElements: null,
      requestID: "req-1",
      eventID: "evt-1",
      readOnly: true,
      resources: [{ accountId: "111122223333", type: "AWS::KMS::Key", ARN: KEY_ARN }],
      eventType: "AwsApiCall",
      managementEvent: true,
      recipientAccountId: "111122223333",
      eventCategory: "Management",
    });
  });

  it("records errors, management responses, and an event name from the wire as data", () => {
    const failed = parsed(
      event({
        eventName: 'x","readOnly":false',
        errorCode: "NotFoundException",
        errorMessage: "no",
      }),
    );
    expect(failed).toMatchObject({
      eventName: 'x","readOnly":false',
      errorCode: "NotFoundException",
      errorMessage: "no",
      responseElements: null,
      readOnly: false,
    });
    const created = parsed(
      event({
        eventName: "CreateAlias",
        requestParameters: { AliasName: "alias/a", TargetKeyId: "k" },
        responseElements: { Done: true },
        resources: [],
      }),
    );
    expect(created).toMatchObject({
      readOnly: false,
      requestParameters: { aliasName: "alias/a", targetKeyId: "k" },
      responseElements: { done: true },
      resources: [],
    });
  });

  it("keeps a __proto__ encryption context key as data", () => {
    const context = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
    const record = parsed(event({ requestParameters: { EncryptionContext: context } }));
    const recorded = (record["requestParameters"] as Record<string, unknown>)[
      "encryptionContext"
    ] as Record<string, unknown>;
    expect(Object.entries(recorded)).toEqual([
      ["__proto__", "x"],
      ["a", "b"],
    ]);
  });

  it("drops every member the logger would redact, at any depth, so the line needs no redaction pass", () => {
    const names = [
      ...new Set(REDACTED_FIELDS.map((path) => path.slice(path.lastIndexOf(".") + 1))),
    ];
    const inner = Object.fromEntries(names.map((name) => [name, "SECRET-VALUE"]));
    const text = auditRecordText(
      event({
        requestParameters: { ...inner, Nested: { ...inner, Deeper: inner } },
        eventName: "CreateKey",
        responseElements: inner,
      }),
      SERVED,
    );
    expect(text).not.toContain("SECRET-VALUE");
  });
});
