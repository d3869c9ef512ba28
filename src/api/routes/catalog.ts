/**
 * /api/v2 routes: catalog (being written; see issue 3).
 */
import type { RoutePlugin } from '../app.js';

export const catalogRoutes: RoutePlugin = () => {};
