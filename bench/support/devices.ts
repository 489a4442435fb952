// The benchmarks' authenticators: one simulator per professional, each keeping its event stream
// open as the app does while it is open. A login's request reaches the device on that stream
// (the provider pushes it the moment the challenge exists, from whichever node); the device
// answers with one signed request: approve, with the page's code and the PIN.
import { DeviceSimulator, type DeviceStream } from '../../src/device/simulator.ts';

interface StreamedChallenge {
  id: string;
  candidates: string[];
}

/** One device, its stream, and the requests heard there that no flow has taken yet. */
class WatchedDevice {
  readonly nationalId: string;
  readonly simulator: DeviceSimulator;
  #stream: DeviceStream | undefined;
  #closing = false;
  readonly #heard = new Map<string, StreamedChallenge>();
  readonly #waiting = new Map<string, (challenge: StreamedChallenge) => void>();

  constructor(nationalId: string, simulator: DeviceSimulator) {
    this.nationalId = nationalId;
    this.simulator = simulator;
  }

  async open(): Promise<void> {
    const stream = await this.simulator.watch((event, data) => {
      if (event !== 'challenge') return;
      const challenge = data as StreamedChallenge;
      const waiter = this.#waiting.get(challenge.id);
      if (waiter) waiter(challenge);
      else this.#heard.set(challenge.id, challenge);
    });
    this.#stream = stream;
    // The provider ends a stream after a while: the app reconnects with a fresh signature. If that
    // fails (the server is gone), the flows waiting on this device say so when they time out.
    void stream.closed.then(() => (this.#closing ? undefined : this.open().catch(() => {})));
  }

  /** The request `id` as the stream brought it; fails after `timeoutMs`. */
  next(id: string, timeoutMs: number): Promise<StreamedChallenge> {
    const heard = this.#heard.get(id);
    if (heard) {
      this.#heard.delete(id);
      return Promise.resolve(heard);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`the device's stream did not bring request ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, (challenge) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve(challenge);
      });
    });
  }

  close(): void {
    this.#closing = true;
    this.#stream?.close();
  }
}

export class BenchDevices {
  readonly #devices: WatchedDevice[];
  readonly #turns: number[];
  readonly #concurrency: number;

  private constructor(devices: WatchedDevice[], concurrency: number) {
    this.#devices = devices;
    this.#concurrency = concurrency;
    this.#turns = new Array<number>(concurrency).fill(0);
  }

  /** Activates one simulator per account and opens its stream. */
  static async activate(issuer: string, accounts: Array<{ nationalId: string; activationCode: string }>, pin: string, concurrency: number): Promise<BenchDevices> {
    const devices = await Promise.all(
      accounts.map(async ({ nationalId, activationCode }) => {
        const simulator = await DeviceSimulator.create(issuer);
        const result = await simulator.activate({ nationalId, activationCode, pin });
        if (result.status !== 201) throw new Error(`activation of ${nationalId} failed: ${JSON.stringify(result.body)}`);
        const device = new WatchedDevice(nationalId, simulator);
        await device.open();
        return device;
      }),
    );
    return new BenchDevices(devices, concurrency);
  }

  get size(): number {
    return this.#devices.length;
  }

  /** Worker w owns devices w, w+C, w+2C… and takes them in turn: no two workers share a device. */
  take(worker: number): WatchedDevice {
    const owned = Math.ceil((this.#devices.length - worker) / this.#concurrency);
    return this.#devices[worker + this.#concurrency * (this.#turns[worker]!++ % owned)]!;
  }

  /** What the professional does on the phone: reads the request, taps the page's code, types the PIN. */
  static async approve(device: WatchedDevice, login: { challengeUrl: URL; displayCode: string }, pin: string): Promise<void> {
    const challengeId = decodeURIComponent(login.challengeUrl.pathname.split('/').at(-1)!);
    const challenge = await device.next(challengeId, 10_000);
    // Number matching shows candidates; a typed code shows none: either way the code of the page is sent.
    if (challenge.candidates.length && !challenge.candidates.includes(login.displayCode)) throw new Error('the code of the page is not among the candidates');
    const approved = await device.simulator.approve(challenge.id, login.displayCode, pin);
    if (approved.status !== 200) throw new Error(`approve: ${approved.status} ${JSON.stringify(approved.body)}`);
  }

  close(): void {
    for (const device of this.#devices) device.close();
  }
}
