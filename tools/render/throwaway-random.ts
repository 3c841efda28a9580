/**
 * A stand-in for the random provider's RandomId (a leaf key's epoch, components/pki.ts) where no
 * provider runs: the offline render and the test harness. Deterministic: the id follows the
 * resource's name and keepers, so two runs with the same keepers agree and new keepers give a new
 * id, as the provider, which replaces the resource when its keepers change, would.
 */
import { createHash } from "node:crypto";
import { StandIn } from "./engine";

export const RANDOM_ID_TYPE = "random:index/randomId:RandomId";

export function randomIdState(
  name: string,
  inputs: Record<string, unknown>,
): Record<string, unknown> {
  const bytes = Number(inputs.byteLength ?? 8);
  const digest = createHash("sha256").update(`${name}::${JSON.stringify(inputs.keepers ?? {})}`);
  const raw = digest.digest().subarray(0, bytes);
  return { ...inputs, hex: raw.toString("hex"), b64Url: raw.toString("base64url") };
}

export function throwawayRandom(): Record<string, StandIn> {
  return { [RANDOM_ID_TYPE]: async ({ name, inputs }) => randomIdState(name, inputs) };
}
