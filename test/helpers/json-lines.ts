/** Protocol messages from JSON lines (`run --json` output, a recording): every line must parse and validate. */
import { ServerMessageSchema, type ServerMessage } from '../../core/protocol.js';

export function serverMessages(text: string | Buffer): ServerMessage[] {
  return text
    .toString()
    .trim()
    .split('\n')
    .map((l) => ServerMessageSchema.parse(JSON.parse(l)));
}
