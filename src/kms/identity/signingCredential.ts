/** What a caller signs requests with (SigV4): an access key and its secret. */
export interface SigningCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Present for temporary credentials; the request must carry the same X-Amz-Security-Token. */
  readonly sessionToken?: string;
  readonly expiration?: Date;
}
