/**
 * /api/v2 routes: node-roles (being written; see issue 3).
 */
import type { RoutePlugin } from '../app.js';

export const nodeRolesRoutes: RoutePlugin = () => {};
