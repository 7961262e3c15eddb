/**
 * Writes clients/protocol.schema.json, the JSON Schema (draft 2020-12) of wire protocol v1, from the
 * zod schemas in ./protocol.ts, for clients in other languages. `npm run build` runs it (also:
 * `npx tsx clients/build-schema.ts`); a unit test (test/unit/protocol-schema.test.ts) fails when the
 * committed file and the zod schemas disagree.
 *
 * Objects are written in zod's input form: unknown properties are allowed, because a minor protocol
 * version may add fields and clients must ignore what they do not know.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  ClientMessageSchema,
  IngestMessageSchema,
  IngestReplySchema,
  PROTOCOL_VERSION,
  ServerMessageSchema,
  SUBPROTOCOL,
  STREAM_PATH,
  INGEST_PATH,
} from '../core/protocol.js';

/** Where the generated file lives (clients/, beside this generator; the package exports it as `circumplex/protocol.schema.json`). */
export const PROTOCOL_SCHEMA_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'protocol.schema.json');

/** One message family as a JSON Schema without its own `$schema` line (the document has one). */
function part(schema: z.ZodType, description: string): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { description, ...rest };
}

/** The schema document: the four message families under `$defs`; the root accepts any of them. */
export function protocolJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `https://circumplex.invalid/schema/${SUBPROTOCOL}.json`,
    title: `circumplex wire protocol ${SUBPROTOCOL} (${PROTOCOL_VERSION})`,
    description:
      `Generated from core/protocol.ts by clients/build-schema.ts; do not edit. WebSocket subprotocol "${SUBPROTOCOL}". ` +
      `Subscribers connect to ${STREAM_PATH}: the server sends ServerMessage, the client sends ClientMessage. ` +
      `Publishers connect to ${INGEST_PATH}, send IngestMessage (audio may also go as binary frames) and get IngestReply. ` +
      'Every message is one JSON text frame. Unknown message types and fields must be ignored (minor versions add them).',
    'x-protocol-version': PROTOCOL_VERSION,
    'x-subprotocol': SUBPROTOCOL,
    anyOf: [{ $ref: '#/$defs/ServerMessage' }, { $ref: '#/$defs/ClientMessage' }, { $ref: '#/$defs/IngestMessage' }, { $ref: '#/$defs/IngestReply' }],
    $defs: {
      ServerMessage: part(ServerMessageSchema, `Server → subscriber on ${STREAM_PATH}.`),
      ClientMessage: part(ClientMessageSchema, `Subscriber → server on ${STREAM_PATH}.`),
      IngestMessage: part(IngestMessageSchema, `Publisher → server on ${INGEST_PATH}.`),
      IngestReply: part(IngestReplySchema, `Server → publisher on ${INGEST_PATH}.`),
    },
  };
}

/** The file's content. */
export function protocolSchemaJson(): string {
  return `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`;
}

// Only write when run as a script, not when imported by the test.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(PROTOCOL_SCHEMA_PATH, protocolSchemaJson());
  process.stdout.write(`wrote ${path.relative(process.cwd(), PROTOCOL_SCHEMA_PATH)} (protocol ${PROTOCOL_VERSION})\n`);
}
