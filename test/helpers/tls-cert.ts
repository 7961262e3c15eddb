/** A throwaway self-signed certificate for TLS tests (openssl from Debian; valid one day, CN and SAN 127.0.0.1). */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** Writes `cert.pem` and `key.pem` into `dir` and returns their paths. */
export function selfSignedCert(dir: string): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile };
}
