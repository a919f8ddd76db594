/** What a dropped or picked file is, from its name and type (shared by the page and its worker). */
export type FileKind = 'image' | 'video' | 'template';

const IMAGE_EXT = ['jpg', 'jpeg', 'png', 'gif', 'bmp', 'webp', 'tif', 'tiff', 'avif'];
const VIDEO_EXT = ['mp4', 'mov', 'm4v', 'webm', 'mkv', 'avi'];

/** What a file is, from its name and type; undefined when none of ours. */
export function kindOf(name: string, type = ''): FileKind | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith('.pkl') || lower.endsWith('.safetensors')) return 'template';
  const ext = lower.includes('.') ? lower.slice(lower.lastIndexOf('.') + 1) : '';
  if (type.startsWith('image/') || IMAGE_EXT.includes(ext)) return 'image';
  if (type.startsWith('video/') || VIDEO_EXT.includes(ext)) return 'video';
  return undefined;
}

