/**
 * Transports carry frames between peers. TCP (with no-delay) is the one implemented; others (RDMA,
 * Unix sockets) would sit behind the same two interfaces.
 * @module
 */

/** A bidirectional byte stream. */
export interface Connection {
  /** Human-readable peer address, for logs. */
  readonly peer: string;
  /** Reads into `p`; resolves null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes all of `p` (one frame, one call). */
  writeAll(p: Uint8Array): Promise<void>;
  /** Closes the stream; safe to call twice. */
  close(): void;
}

/** Accepts connections. */
export interface Listener extends AsyncIterable<Connection> {
  /** The bound address as "host:port". */
  readonly addr: string;
  /** The bound port (useful with port 0). */
  readonly port: number;
  close(): void;
}

class TcpConnection implements Connection {
  #conn: Deno.TcpConn;
  #closed = false;
  readonly peer: string;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    try {
      conn.setNoDelay(true);
    } catch {
      // setNoDelay fails only on sockets that are already closed; reads will say so.
    }
    const a = conn.remoteAddr as Deno.NetAddr;
    this.peer = a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#conn.read(p);
  }

  async writeAll(p: Uint8Array): Promise<void> {
    let o = 0;
    while (o < p.length) o += await this.#conn.write(o === 0 ? p : p.subarray(o));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed by the peer
    }
  }
}

/** Listens for TCP connections on host:port (port 0 picks a free one). */
export function listenTcp(host: string, port: number): Listener {
  const l = Deno.listen({ hostname: host, port, transport: "tcp" });
  const a = l.addr as Deno.NetAddr;
  return {
    addr: a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`,
    port: a.port,
    close() {
      try {
        l.close();
      } catch {
        // already closed
      }
    },
    async *[Symbol.asyncIterator]() {
      while (true) {
        let c: Deno.TcpConn;
        try {
          c = await l.accept();
        } catch (e) {
          if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
          // Transient accept failures (too many open files, a reset before accept) must not stop
          // the server: note it and keep accepting.
          console.error(`accept failed: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        yield new TcpConnection(c);
      }
    },
  };
}

/** Splits "host:port" (IPv6 as "[::1]:port"). */
export function parseEndpoint(endpoint: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(endpoint) ?? /^([^:]+):(\d+)$/.exec(endpoint);
  if (!m) throw new Error(`endpoint "${endpoint}" is not HOST:PORT`);
  const port = Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new Error(`port ${m[2]} in "${endpoint}" is out of range`);
  return { host: m[1], port };
}

/** Opens a TCP connection with no-delay set. */
export async function connectTcp(host: string, port: number): Promise<Connection> {
  const c = await Deno.connect({ hostname: host, port, transport: "tcp" });
  return new TcpConnection(c);
}

/** True when `host` is a loopback address or name. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}
