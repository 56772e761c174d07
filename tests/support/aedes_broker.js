// An aedes broker on 127.0.0.1 for mqttx's interop tests (tests/support/aedes.hpp).
//   node aedes_broker.js PORT MODULES   (MODULES: where scripts/setup.sh installed aedes)
// Prints "ready" once it listens; stops on SIGTERM (and dies with the test: the
// fixture starts it with PR_SET_PDEATHSIG).
'use strict'
const net = require('net')
const path = require('path')

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !process.argv[3]) {
  console.error('usage: node aedes_broker.js PORT MODULES')
  process.exit(2)
}
const aedes = require(path.join(process.argv[3], 'aedes'))()
const server = net.createServer(aedes.handle)
server.on('error', (err) => {
  console.error(`aedes: ${err.message}`)
  process.exit(1)
})
server.listen(port, '127.0.0.1', () => console.log('ready'))
const stop = () => server.close(() => aedes.close(() => process.exit(0)))
process.on('SIGTERM', stop)
