// Development entry for the `crowbar` command without a build: `node --import tsx src/cli/run.ts sim …`.
import { main } from './main.js';
await main(process.argv);
