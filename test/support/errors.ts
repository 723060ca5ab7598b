/**
 * `failure(promise)` awaits an SDK call that must fail and returns what the client saw:
 * the AWS exception name, the HTTP status and the message. It fails the test if the call
 * succeeded, so a test can never pass on a success that should have been an error.
 */
export interface Failure {
  readonly name: string;
  readonly status: number | undefined;
  readonly message: string;
}

export async function failure(call: Promise<unknown>): Promise<Failure> {
  let result: unknown;
  try {
    result = await call;
  } catch (err) {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    return {
      name: e.name ?? "",
      status: e.$metadata?.httpStatusCode,
      message: e.message ?? "",
    };
  }
  throw new Error(`expected the call to fail, but it returned ${JSON.stringify(result)}`);
}
