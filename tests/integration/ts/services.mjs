// Test services written with the real TypeScript SDK (@restatedev/restate-sdk), served over h2c.
import * as restate from "@restatedev/restate-sdk";

const greeter = restate.service({
  name: "TsGreeter",
  handlers: {
    greet: async (ctx, name) => {
      const stamp = await ctx.run("stamp", () => "ts");
      return `Hello ${name} from ${stamp}!`;
    },
    nap: async (ctx, millis) => {
      await ctx.sleep(millis);
      return millis;
    },
  },
});

const counter = restate.object({
  name: "TsCounter",
  handlers: {
    add: async (ctx, delta) => {
      const total = ((await ctx.get("count")) ?? 0) + delta;
      ctx.set("count", total);
      return total;
    },
  },
});

restate.endpoint().bind(greeter).bind(counter).listen(Number(process.argv[2]));
