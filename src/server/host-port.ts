/** Splits "host:port" (the host may itself hold colons, as an IPv6 literal does). */
export function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
