/**
 * Runs an Argo CD resource health script the way Argo CD does: the object as the global
 * `obj` (JSON converted to Lua tables), the script's returned table read as
 * `{status, message}`. The interpreter is fengari (Lua 5.3 in JavaScript); Argo CD runs
 * gopher-lua (5.1), so the scripts keep to the common subset, and whole numbers are
 * pushed as integers so that they print as gopher-lua prints them ("2", not "2.0").
 */
import { createRequire } from "node:module";

interface LuaState {
  readonly brand: "lua_State";
}
interface Fengari {
  to_luastring(this: void, s: string): Uint8Array;
  lua: {
    lua_newtable(L: LuaState): void;
    lua_pushstring(L: LuaState, s: Uint8Array): void;
    lua_pushinteger(L: LuaState, n: number): void;
    lua_pushnumber(L: LuaState, n: number): void;
    lua_pushboolean(L: LuaState, b: boolean): void;
    lua_pushnil(L: LuaState): void;
    lua_settable(L: LuaState, index: number): void;
    lua_rawseti(L: LuaState, index: number, i: number): void;
    lua_setglobal(L: LuaState, name: Uint8Array): void;
    lua_pcall(L: LuaState, nargs: number, nresults: number, handler: number): number;
    lua_getfield(L: LuaState, index: number, name: Uint8Array): number;
    lua_tojsstring(L: LuaState, index: number): string | null;
    lua_istable(L: LuaState, index: number): boolean;
    lua_pop(L: LuaState, n: number): void;
  };
  lauxlib: {
    luaL_newstate(): LuaState;
    luaL_loadstring(L: LuaState, source: Uint8Array): number;
  };
  lualib: { luaL_openlibs(L: LuaState): void };
}

const fengari = createRequire(import.meta.url)("fengari") as Fengari;
const { lua, lauxlib, lualib, to_luastring } = fengari;

export interface HealthStatus {
  readonly status: string;
  readonly message: string;
}

function push(L: LuaState, value: unknown): void {
  if (value === null || value === undefined) lua.lua_pushnil(L);
  else if (typeof value === "boolean") lua.lua_pushboolean(L, value);
  else if (typeof value === "number")
    if (Number.isInteger(value)) lua.lua_pushinteger(L, value);
    else lua.lua_pushnumber(L, value);
  else if (typeof value === "string") lua.lua_pushstring(L, to_luastring(value));
  else if (Array.isArray(value)) {
    lua.lua_newtable(L);
    value.forEach((item, i) => {
      push(L, item);
      lua.lua_rawseti(L, -2, i + 1);
    });
  } else if (typeof value === "object") {
    lua.lua_newtable(L);
    for (const [k, v] of Object.entries(value)) {
      lua.lua_pushstring(L, to_luastring(k));
      push(L, v);
      lua.lua_settable(L, -3);
    }
  } else throw new Error(`cannot give a ${typeof value} to Lua`);
}

/** Evaluates `script` with `obj` set to (a JSON copy of) `object`. */
export function runHealthScript(script: string, object: unknown): HealthStatus {
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  push(L, JSON.parse(JSON.stringify(object)));
  lua.lua_setglobal(L, to_luastring("obj"));
  if (lauxlib.luaL_loadstring(L, to_luastring(script)) !== 0 || lua.lua_pcall(L, 0, 1, 0) !== 0)
    throw new Error(`Lua error: ${lua.lua_tojsstring(L, -1) ?? "unknown"}`);
  if (!lua.lua_istable(L, -1)) throw new Error("the health script did not return a table");
  const field = (name: string) => {
    lua.lua_getfield(L, -1, to_luastring(name));
    const value = lua.lua_tojsstring(L, -1);
    lua.lua_pop(L, 1);
    return value ?? "";
  };
  return { status: field("status"), message: field("message") };
}
