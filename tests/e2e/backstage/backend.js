// A real Backstage catalog backend, started without the Backstage CLI: the tests point it at
// ecr-catalog through a `type: url` location and compare what it ingests with what was served.
'use strict';

const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(import('@backstage/plugin-catalog-backend'));
backend.start();
