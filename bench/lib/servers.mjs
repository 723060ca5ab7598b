/**
 * Starts a benchmark server (a module under bench/servers/ that calls runChild) as a
 * forked child and gives the parent a handle: its URL, its CPU time, and stop().
 */
import { fork } from "node:child_process";
import { once } from "node:events";

/**
 * @param {string} modulePath absolute path of the server module
 * @param {object} options passed to the child's start function (JSON)
 * @param {{ execArgv?: string[], name?: string }} [spawn]
 */
export async function spawnServer(modulePath, options = {}, spawn = {}) {
  const child = fork(modulePath, [JSON.stringify(options)], {
    execArgv: spawn.execArgv ?? [],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const name = spawn.name ?? modulePath;
  const replies = [];
  let waiting = [];
  child.on("message", (message) => {
    const next = waiting.shift();
    if (next) next(message);
    else replies.push(message);
  });
  const exited = once(child, "exit");
  const receive = () =>
    new Promise((resolve, reject) => {
      if (replies.length > 0) return resolve(replies.shift());
      const onExit = ([code]) => reject(new Error(`${name} exited with code ${code}`));
      void exited.then(onExit);
      waiting.push(resolve);
    });
  const expect = async (field) => {
    const message = await receive();
    if (message?.error) throw new Error(`${name}: ${message.error}`);
    if (!(field in message))
      throw new Error(`${name}: unexpected message ${JSON.stringify(message)}`);
    return message;
  };

  const { ready: url, info } = await expect("ready");
  return {
    name,
    url,
    info,
    pid: child.pid,
    /** CPU time the server process has used so far, in microseconds. */
    async cpuMicros() {
      child.send({ cmd: "cpu" });
      const { cpu } = await expect("cpu");
      return cpu.user + cpu.system;
    },
    /** Stops the server; resolves to whatever summary it reports (e.g. audit line counts). */
    async stop() {
      child.send({ cmd: "stop" });
      const { summary } = await expect("stopped");
      await exited;
      waiting = [];
      return summary;
    },
  };
}
