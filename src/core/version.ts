/** Apollo's version as exports record it (kept equal to package.json's by a unit test). */
export const APOLLO_VERSION = '0.1.0';
