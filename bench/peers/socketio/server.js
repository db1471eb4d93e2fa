// bench/peers/socketio/server.js - the Socket.IO peer of Parley's chat benchmark.
//
// A room-broadcast chat server written the way the Socket.IO documentation recommends
// (https://socket.io/docs/v4/rooms/): a client joins a room with an acknowledgement callback,
// and a chat message is broadcast with io.to(room).emit(), which reaches every member of the
// room, the sender included (as in Parley and in an XMPP MUC). One Node process, one event loop,
// like Parley's one loop thread. WebSocket transport only (no long-polling upgrade dance) and no
// per-message deflate, so the framing cost is comparable with Parley's plain JSON text frames.
//
// Usage: node server.js [PORT]   (or PORT=... node server.js); listens on 127.0.0.1 only.
// Prints "listening 127.0.0.1:PORT" on stdout when ready. Stops on SIGTERM/SIGINT.
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || process.env.PORT || 3000);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`server.js: bad port ${process.argv[2] || process.env.PORT}`);
  process.exit(2);
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
});

io.on('connection', (socket) => {
  // join(room, ack): the ack tells the client it is in the room, so it can start sending.
  socket.on('join', (room, ack) => {
    if (typeof room !== 'string' || room.length === 0 || room.length > 128) {
      if (typeof ack === 'function') ack({ ok: false });
      return;
    }
    socket.join(room);
    if (typeof ack === 'function') ack({ ok: true, room });
  });
  // msg(room, text): broadcast to the room, the sender included. Only members may post.
  socket.on('msg', (room, text) => {
    if (typeof room !== 'string' || typeof text !== 'string' || !socket.rooms.has(room)) return;
    io.to(room).emit('msg', room, text);
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  console.log(`listening 127.0.0.1:${port}`);
});

function stop() {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
