#!/usr/bin/env node
'use strict'
// The `twh-emulator` command of the npm package (`npx twh-emulator serve`): the emulator's own
// command line, the Rust binary's very function (`twh_emulator::cli::run`), so it takes exactly
// its flags (`npx twh-emulator --help`). The native call blocks this process for as long as the
// emulator serves (this process is the emulator); Ctrl-C and SIGTERM go to the emulator's own
// handlers, which stop it cleanly, and its exit status becomes this process's.

const { runCli } = require('../binding.js')

// Node's own handlers of SIGINT and SIGTERM restore the terminal and raise the signal again; the
// emulator's handler (tokio's) calls the handler it replaced, so the signal would come back
// forever instead of stopping the emulator. With listeners, Node hands both to libuv, whose
// handler only records them (for listeners that run, and do nothing, once the emulator stopped).
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => {})

process.exitCode = runCli(['twh-emulator', ...process.argv.slice(2)])
