/**
 * The typed errors of graphwire. Each says what was wrong and where; on the server any of them ends
 * the one connection it arose on, with one log line, and never the process.
 * @module
 */

/** Bytes that do not form a valid message: wrong sizes, unknown commands, a frame over the cap. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** A well-formed message whose content is not acceptable: ranges, handles, graphs, types. */
export class ValidationError extends Error {
  override name = "ValidationError";
}

/** A device that could not do what it was asked (out of memory, unsupported op, driver failure). */
export class DeviceError extends Error {
  override name = "DeviceError";
}

/** An op or type combination a device does not run. */
export class UnsupportedOpError extends DeviceError {
  override name = "UnsupportedOpError";
}
