// Loaded with `node --import` by the CLI test of a full disk: from the Nth checkpoint write on
// (VAT_FULL_DISK_AT, default 2), writing the checkpoint's temporary file fails with ENOSPC, as
// it does when the disk fills up mid-run. Only Node's own fs is changed; the CLI runs as it is.
import { promises as fs } from 'node:fs';

const open = fs.open;
let writes = 0;
fs.open = async (file, ...rest) => {
  const handle = await open.call(fs, file, ...rest);
  if (typeof file === 'string' && /checkpoint\.safetensors\.[0-9a-f]+\.tmp$/.test(file) && ++writes >= Number(process.env.VAT_FULL_DISK_AT ?? 2)) {
    handle.writeFile = async () => {
      const err = new Error(`ENOSPC: no space left on device, write '${file}'`);
      Object.assign(err, { code: 'ENOSPC', errno: -28, syscall: 'write', path: file });
      throw err;
    };
  }
  return handle;
};
