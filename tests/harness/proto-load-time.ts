/**
 * Second part of `npm run bench`: how long the tests' schema validator takes to load Envoy's API
 * protos (once per test process). A figure to watch, not a test: it depends on the machine.
 */
import { envoyProtoStats } from "./envoy-schema";

const stats = envoyProtoStats();
console.log(`Envoy API protos: ${stats.files} files loaded in ${stats.loadMs} ms`);
