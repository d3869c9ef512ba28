/**
 * /api/v2 routes: nodes (being written; see issue 3).
 */
import type { RoutePlugin } from '../app.js';

export const nodesRoutes: RoutePlugin = () => {};
