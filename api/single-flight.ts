/**
 * Concurrent identical reads share one computation ("single flight"), never an answer older than a write this
 * process completed before the request arrived.
 *
 * The write epoch counts the writes this API process has completed: the app bumps it after every request whose
 * method may write (anything but GET, HEAD and OPTIONS), before that request's response is sent. A read joins a
 * flight only when the flight started at the current epoch, that is when no write completed between the flight's
 * start and the read's arrival: so whatever this process had written before the read arrived, the flight's
 * statements started after it had been committed. A read arriving later starts a flight of its own. There is no
 * cache: a flight is forgotten as soon as it settles, and the next read computes again.
 *
 * Writes by other processes (the worker) are seen as they would be by a request that reached the database a few
 * milliseconds earlier: at most one flight's duration, with no write of this process in between.
 */
export class WriteEpoch {
  private value = 0;

  get current(): number {
    return this.value;
  }

  /** A write completed: flights started before it take no new readers. */
  bump(): void {
    this.value++;
  }
}

const epochs = new WeakMap<object, WriteEpoch>();

/**
 * The write epoch of one database handle (`deps.db`): the app bumps it, and every flight that reads through that
 * handle checks it, the route table's and those a module keeps of its own (the metric series the dashboard reads).
 */
export function writeEpochOf(db: object): WriteEpoch {
  let epoch = epochs.get(db);
  if (!epoch) epochs.set(db, (epoch = new WriteEpoch()));
  return epoch;
}

interface Flight<T> {
  epoch: number;
  promise: Promise<T>;
}

export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  constructor(private readonly epoch: WriteEpoch) {}

  /** The result of the flight of `key` started at the current epoch, or of `compute` started now as that flight. */
  run(key: string, compute: () => Promise<T>): Promise<T> {
    const epoch = this.epoch.current;
    const joined = this.flights.get(key);
    if (joined && joined.epoch === epoch) return joined.promise;
    const flight: Flight<T> = { epoch, promise: Promise.resolve().then(compute) };
    // A newer flight of the same key (started after a write) may have replaced this one: leave it in place.
    const forget = () => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    };
    flight.promise.then(forget, forget);
    this.flights.set(key, flight);
    return flight.promise;
  }

  /** Flights in the air (for tests). */
  get size(): number {
    return this.flights.size;
  }
}
