/**
 * /api/v2 routes: runs (being written; see issue 3).
 */
import type { RoutePlugin } from '../app.js';

export const runsRoutes: RoutePlugin = () => {};
